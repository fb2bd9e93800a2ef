// tokenizer.json, component by component. The file is the serde form of a
// tokenizers::Tokenizer: {"added_tokens", "normalizer", "pre_tokenizer",
// "model", "post_processor", "decoder", ...}; each component is an object
// with a "type" (or null). We read the types Llama-family files use and
// refuse the rest by path, never approximating one.
#include "tokenizer/json_source.h"

#include <simdjson.h>

#include <algorithm>
#include <optional>

#include "common/error.h"

namespace st::tokenization {
namespace {

using Json = nlohmann::json;

struct Reader {
  const std::string& file;

  [[noreturn]] void refuse(const std::string& where, const std::string& what) const {
    fail(file, ": ", where, ": ", what);
  }
  const Json& member(const Json& object, const std::string& where, const char* key) const {
    auto it = object.find(key);
    if (it == object.end()) refuse(where, cat("missing key \"", key, "\""));
    return *it;
  }
  std::string string(const Json& object, const std::string& where, const char* key) const {
    const Json& v = member(object, where, key);
    if (!v.is_string()) refuse(where + "." + key, "expected a string, got " + v.dump());
    return v.get<std::string>();
  }
  bool boolean(const Json& object, const std::string& where, const char* key, bool fallback) const {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) refuse(where + "." + key, "expected true or false, got " + it->dump());
    return it->get<bool>();
  }
  size_t count(const Json& object, const std::string& where, const char* key) const {
    const Json& v = member(object, where, key);
    if (!v.is_number_unsigned()) refuse(where + "." + key, "expected a count, got " + v.dump());
    return v.get<size_t>();
  }
  std::string type(const Json& component, const std::string& where) const {
    if (!component.is_object())
      refuse(where, "expected an object with a \"type\", got " + component.dump().substr(0, 80));
    return string(component, where, "type");
  }
  // {"String": "x"} patterns only: a Regex pattern would need the regex engine tokenizers uses.
  std::string literal_pattern(const Json& step, const std::string& where) const {
    const Json& p = member(step, where, "pattern");
    if (p.is_object() && p.contains("String") && p["String"].is_string()) return p["String"].get<std::string>();
    refuse(where + ".pattern", "only {\"String\": ...} patterns are supported, got " + p.dump());
  }

  // A Sequence component: read(item, its path) for each item of its `key` list.
  template <typename Read>
  void each_in_sequence(const Json& sequence, const std::string& where, const char* key, Read&& read) const {
    const Json& list = member(sequence, where, key);
    if (!list.is_array()) refuse(where + "." + key, "expected a list");
    for (size_t i = 0; i < list.size(); ++i) read(list[i], cat(where, ".", key, "[", i, "]"));
  }

  void normalizer(const Json& n, const std::string& where, std::vector<NormalizerStep>& out) const {
    if (n.is_null()) return;
    const std::string t = type(n, where);
    if (t == "Sequence") {
      each_in_sequence(n, where, "normalizers",
                       [&](const Json& item, const std::string& at) { normalizer(item, at, out); });
    } else if (t == "Prepend") {
      out.push_back({NormalizerStep::Kind::kPrepend, "", string(n, where, "prepend")});
    } else if (t == "Replace") {
      out.push_back({NormalizerStep::Kind::kReplace, literal_pattern(n, where), string(n, where, "content")});
    } else if (t == "NFC") {
      out.push_back({NormalizerStep::Kind::kNFC, "", ""});
    } else if (t == "NFKC") {
      out.push_back({NormalizerStep::Kind::kNFKC, "", ""});
    } else {
      refuse(where, "normalizer type \"" + t + "\" is not supported (Prepend, Replace, NFC, NFKC, Sequence are)");
    }
  }

  Metaspace metaspace(const Json& m, const std::string& where) const {
    Metaspace out;
    out.replacement = string(m, where, "replacement");
    if (out.replacement.empty()) refuse(where + ".replacement", "must not be empty");
    std::string scheme = "always";
    if (auto it = m.find("prepend_scheme"); it != m.end()) {
      scheme = string(m, where, "prepend_scheme");
    } else if (m.contains("add_prefix_space")) {  // files from before prepend_scheme existed
      scheme = boolean(m, where, "add_prefix_space", true) ? "always" : "never";
    }
    if (scheme == "always")
      out.prepend = Metaspace::Prepend::kAlways;
    else if (scheme == "first")
      out.prepend = Metaspace::Prepend::kFirst;
    else if (scheme == "never")
      out.prepend = Metaspace::Prepend::kNever;
    else
      refuse(where + ".prepend_scheme", "expected always, first or never, got \"" + scheme + "\"");
    out.split = boolean(m, where, "split", true);
    return out;
  }

  void pre_tokenizer(const Json& p, const std::string& where, std::optional<Metaspace>& out) const {
    if (p.is_null()) return;
    const std::string t = type(p, where);
    if (t == "Sequence") {
      each_in_sequence(p, where, "pretokenizers",
                       [&](const Json& item, const std::string& at) { pre_tokenizer(item, at, out); });
    } else if (t == "Metaspace") {
      if (out) refuse(where, "a second Metaspace pre-tokenizer is not supported");
      out = metaspace(p, where);
    } else {
      refuse(where, "pre-tokenizer type \"" + t + "\" is not supported (Metaspace and Sequence are)");
    }
  }

  void decoder(const Json& d, const std::string& where, std::vector<DecoderStep>& out) const {
    if (d.is_null()) return;
    const std::string t = type(d, where);
    DecoderStep step{};
    if (t == "Sequence") {
      each_in_sequence(d, where, "decoders", [&](const Json& item, const std::string& at) { decoder(item, at, out); });
      return;
    } else if (t == "Replace") {
      step.kind = DecoderStep::Kind::kReplace;
      step.pattern = literal_pattern(d, where);
      step.content = string(d, where, "content");
    } else if (t == "ByteFallback") {
      step.kind = DecoderStep::Kind::kByteFallback;
    } else if (t == "Fuse") {
      step.kind = DecoderStep::Kind::kFuse;
    } else if (t == "Strip") {
      step.kind = DecoderStep::Kind::kStrip;
      step.content = string(d, where, "content");
      if (utf8_length(step.content, 0) != step.content.size() || step.content.empty())
        refuse(where + ".content", "expected one character");
      step.start = count(d, where, "start");
      step.stop = count(d, where, "stop");
    } else if (t == "Metaspace") {
      step.kind = DecoderStep::Kind::kMetaspace;
      step.metaspace = metaspace(d, where);
    } else {
      refuse(where, "decoder type \"" + t +
                        "\" is not supported (Replace, ByteFallback, Fuse, Strip, Metaspace, "
                        "Sequence are)");
    }
    out.push_back(step);
  }

  AddedToken added_token(const Json& entry, const std::string& where) const {
    if (!entry.is_object()) refuse(where, "expected an object");
    AddedToken t;
    const Json& id = member(entry, where, "id");
    if (!id.is_number_unsigned()) refuse(where + ".id", "expected a token id, got " + id.dump());
    t.id = id.get<int32_t>();
    t.content = string(entry, where, "content");
    t.special = boolean(entry, where, "special", false);
    t.normalized = boolean(entry, where, "normalized", !t.special);
    t.lstrip = boolean(entry, where, "lstrip", false);
    t.rstrip = boolean(entry, where, "rstrip", false);
    t.single_word = boolean(entry, where, "single_word", false);
    return t;
  }
};

}  // namespace

TokenizerJson read_tokenizer_json(const std::string& path) {
  // The file is mostly model.vocab and model.merges (Salamandra's: 256k
  // pieces, 19-37 MB), which simdjson reads about ten times faster than a
  // DOM of nlohmann::json; each small component goes to nlohmann::json for
  // the checks below.
  simdjson::padded_string bytes;
  if (auto error = simdjson::padded_string::load(path).get(bytes))
    fail(path, ": cannot read: ", simdjson::error_message(error));
  simdjson::dom::parser parser;
  simdjson::dom::element document;
  if (auto error = parser.parse(bytes).get(document)) fail(path, ": not valid JSON: ", simdjson::error_message(error));
  Reader r{path};
  simdjson::dom::object top;
  if (document.get_object().get(top)) r.refuse("(top level)", "expected a JSON object");
  auto small = [](simdjson::dom::element e) { return Json::parse(simdjson::minify(e)); };
  Json root = Json::object();   // every top-level component but the model
  Json model = Json::object();  // the model's keys but vocab and merges
  std::optional<simdjson::dom::element> vocab, merges;
  bool has_model = false;
  for (auto [key, value] : top) {
    if (key != "model") {
      root[std::string(key)] = small(value);
      continue;
    }
    has_model = true;
    simdjson::dom::object fields;
    if (value.get_object().get(fields)) r.refuse("model", "expected an object");
    for (auto [field, v] : fields) {
      if (field == "vocab")
        vocab = v;
      else if (field == "merges")
        merges = v;
      else
        model[std::string(field)] = small(v);
    }
  }
  if (!has_model) r.refuse("(top level)", "missing key \"model\"");
  TokenizerJson out;
  Pipeline& p = out.pipeline;

  // model: BPE only (Llama-family files; Unigram/WordPiece are other families).
  if (auto it = model.find("type"); it != model.end() && (!it->is_string() || *it != "BPE"))
    r.refuse("model.type", it->dump() + " is not supported (only BPE)");
  if (auto it = model.find("dropout");
      it != model.end() && !it->is_null() && !(it->is_number() && it->get<double>() == 0.0))
    r.refuse("model.dropout", it->dump() + ": BPE dropout makes tokenization random; only null is supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (auto it = model.find(key);
        it != model.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty()))
      r.refuse(std::string("model.") + key, it->dump() + " is not supported (only null)");
  p.bpe.byte_fallback = r.boolean(model, "model", "byte_fallback", false);
  p.bpe.fuse_unk = r.boolean(model, "model", "fuse_unk", false);
  p.bpe.ignore_merges = r.boolean(model, "model", "ignore_merges", false);

  simdjson::dom::object pieces;
  if (!vocab) r.refuse("model", "missing key \"vocab\"");
  if (vocab->get_object().get(pieces)) r.refuse("model.vocab", "expected an object {piece: id}");
  const size_t count = pieces.size();
  p.pieces.assign(count, std::string());
  std::vector<uint8_t> seen(count, 0);
  for (auto [piece, id] : pieces) {
    uint64_t k = 0;
    const std::string where = cat("model.vocab[\"", piece, "\"]");
    if (id.get_uint64().get(k) || k >= count)
      r.refuse(where, cat("id ", simdjson::minify(id), " is not in 0..", count - 1,
                          " (ids must number the pieces without gaps)"));
    if (seen[k]) r.refuse(where, cat("id ", k, " is given to two pieces"));
    seen[k] = 1;
    p.pieces[k] = std::string(piece);
  }
  if (auto it = model.find("unk_token"); it != model.end() && !it->is_null()) {
    if (!it->is_string()) r.refuse("model.unk_token", "expected a string");
    auto unk = std::find(p.pieces.begin(), p.pieces.end(), it->get<std::string>());
    if (unk == p.pieces.end()) r.refuse("model.unk_token", it->dump() + " is not a piece of model.vocab");
    p.bpe.unk_id = static_cast<int32_t>(unk - p.pieces.begin());
  }
  simdjson::dom::array merge_list;
  if (!merges) r.refuse("model", "missing key \"merges\"");
  if (merges->get_array().get(merge_list)) r.refuse("model.merges", "expected a list");
  p.merges.reserve(merge_list.size());
  size_t i = 0;
  for (simdjson::dom::element m : merge_list) {
    std::string_view text, left, right;
    simdjson::dom::array pair;
    if (!m.get_string().get(text)) {  // "left right" (pieces never contain ' ': it is '▁' in them)
      size_t space = text.find(' ');
      if (space == std::string_view::npos || text.find(' ', space + 1) != std::string_view::npos)
        r.refuse(cat("model.merges[", i, "]"), "expected \"left right\", got " + simdjson::minify(m));
      p.merges.emplace_back(std::string(text.substr(0, space)), std::string(text.substr(space + 1)));
    } else if (!m.get_array().get(pair) && pair.size() == 2 && !pair.at(0).get_string().get(left) &&
               !pair.at(1).get_string().get(right)) {
      p.merges.emplace_back(std::string(left), std::string(right));
    } else {
      r.refuse(cat("model.merges[", i, "]"), "expected \"left right\" or [left, right], got " + simdjson::minify(m));
    }
    ++i;
  }

  if (auto it = root.find("normalizer"); it != root.end()) r.normalizer(*it, "normalizer", p.normalizer);
  if (auto it = root.find("pre_tokenizer"); it != root.end()) r.pre_tokenizer(*it, "pre_tokenizer", p.pre_tokenizer);
  if (auto it = root.find("decoder"); it != root.end()) r.decoder(*it, "decoder", p.decoder);
  for (const char* key : {"truncation", "padding"})
    if (auto it = root.find(key); it != root.end() && !it->is_null())
      r.refuse(key, "is set; we only reproduce tokenizers without built-in truncation or padding");

  if (auto it = root.find("added_tokens"); it != root.end() && !it->is_null()) {
    if (!it->is_array()) r.refuse("added_tokens", "expected a list");
    for (size_t i = 0; i < it->size(); ++i) out.added.push_back(r.added_token((*it)[i], cat("added_tokens[", i, "]")));
  }

  // post_processor: TemplateProcessing's single template, "[special...] $A [special...]".
  if (auto it = root.find("post_processor"); it != root.end() && !it->is_null()) {
    const std::string where = "post_processor";
    const std::string t = r.type(*it, where);
    if (t != "TemplateProcessing")
      r.refuse(where, "post-processor type \"" + t + "\" is not supported (only TemplateProcessing)");
    out.has_post_processor = true;
    const Json& single = r.member(*it, where, "single");
    const Json& specials = r.member(*it, where, "special_tokens");
    if (!single.is_array()) r.refuse(where + ".single", "expected a list");
    bool seen_sequence = false;
    for (size_t i = 0; i < single.size(); ++i) {
      const std::string at = cat(where, ".single[", i, "]");
      const Json& item = single[i];
      if (item.is_object() && item.contains("Sequence")) {
        if (seen_sequence) r.refuse(at, "a second sequence in the single template");
        if (r.string(item["Sequence"], at + ".Sequence", "id") != "A")
          r.refuse(at, "the single template's sequence must be $A");
        seen_sequence = true;
      } else if (item.is_object() && item.contains("SpecialToken")) {
        const std::string name = r.string(item["SpecialToken"], at + ".SpecialToken", "id");
        const std::string sat = where + ".special_tokens[\"" + name + "\"]";
        if (!specials.is_object() || !specials.contains(name)) r.refuse(sat, "missing");
        const Json& ids = r.member(specials[name], sat, "ids");
        if (!ids.is_array()) r.refuse(sat + ".ids", "expected a list of ids");
        for (const Json& id : ids) {
          if (!id.is_number_unsigned()) r.refuse(sat + ".ids", "expected a list of ids, got " + ids.dump());
          (seen_sequence ? p.suffix_ids : p.prefix_ids).push_back(id.get<int32_t>());
        }
      } else {
        r.refuse(at, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}, got " + item.dump());
      }
    }
    if (!seen_sequence) r.refuse(where + ".single", "has no $A");
  }
  return out;
}

}  // namespace st::tokenization
