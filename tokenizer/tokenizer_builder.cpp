// Salamandra-style SentencePiece training, see tokenizer_builder.h.
//
// Choices that differ from BSC's config.yml, and why:
//  - Normalisation is "identity". BSC used a custom NFC table (nfc.tsv, not
//    available), but transformers' LlamaTokenizer ignores the normaliser of
//    tokenizer.model altogether (it rebuilds a tokenizers BPE with no
//    normaliser). Any rule we bake in (nmt_nfkc, NFC) would make spm and HF
//    disagree on the same text; identity keeps both, and st::Tokenizer,
//    byte-for-byte faithful. Callers wanting NFC should normalise the text.
//  - <|im_start|>/<|im_end|> are trained as control symbols (so they get ids
//    4 and 5 ahead of the reserved tokens, as in BSC's base model) and then
//    turned into USER_DEFINED pieces in the proto, as BSC's instruct change
//    does: sentencepiece always numbers control symbols before user-defined
//    ones, so this is the only way to get ids 4/5 user-defined and the
//    reserved control tokens right after them.
//  - Space runs start at length 2: a user-defined lone "▁" would stop BPE
//    from learning any word-initial piece ("▁the").
//  - Inputs are read in order with no sampling so training is deterministic.
#include "tokenizer/tokenizer_builder.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/atomic_file.h"
#include "common/error.h"

namespace st {
namespace {

constexpr const char* kSpaceSymbol = "\xE2\x96\x81";  // U+2581, spm's space

std::string repeat(const std::string& unit, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += unit;
  return out;
}

// --- minimal protobuf walking, enough to retag two pieces -----------------

uint64_t read_varint(std::string_view buf, size_t& pos) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    ST_CHECK(pos < buf.size(), "truncated varint in trained model");
    uint8_t byte = static_cast<uint8_t>(buf[pos++]);
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return value;
  }
  ST_CHECK(false, "overlong varint in trained model");
  return 0;
}

// Skips one field's payload given its wire type.
void skip_field(std::string_view buf, size_t& pos, int wire_type) {
  switch (wire_type) {
    case 0: read_varint(buf, pos); break;
    case 1: pos += 8; break;
    case 2: pos += read_varint(buf, pos); break;
    case 5: pos += 4; break;
    default: ST_CHECK(false, "unexpected wire type ", wire_type);
  }
  ST_CHECK(pos <= buf.size(), "field runs past the end of the trained model");
}

// Changes the type of the named pieces (ModelProto field 1, SentencePiece
// field 3) from CONTROL (3) to USER_DEFINED (4), in place: both are one-byte
// varints so no length prefix changes.
void retag_control_as_user_defined(std::string& proto,
                                   const std::vector<std::string>& names) {
  size_t pos = 0;
  size_t retagged = 0;
  while (pos < proto.size()) {
    uint64_t tag = read_varint(proto, pos);
    int field = static_cast<int>(tag >> 3), wire = static_cast<int>(tag & 7);
    if (field != 1 || wire != 2) {
      skip_field(proto, pos, wire);
      continue;
    }
    size_t len = read_varint(proto, pos);
    size_t end = pos + len;
    ST_CHECK(end <= proto.size());
    std::string_view piece;
    size_t type_pos = std::string::npos;
    while (pos < end) {
      uint64_t t = read_varint(proto, pos);
      int f = static_cast<int>(t >> 3), w = static_cast<int>(t & 7);
      if (f == 1 && w == 2) {
        size_t n = read_varint(proto, pos);
        piece = std::string_view(proto).substr(pos, n);
        pos += n;
      } else if (f == 3 && w == 0) {
        type_pos = pos;
        read_varint(proto, pos);
      } else {
        skip_field(proto, pos, w);
      }
    }
    for (const auto& name : names) {
      if (piece == name) {
        ST_CHECK(type_pos != std::string::npos && proto[type_pos] == 3,
                 "piece ", name, " is not a control symbol");
        proto[type_pos] = 4;
        ++retagged;
      }
    }
  }
  ST_CHECK(retagged == names.size(), "retagged ", retagged, " pieces");
}

nlohmann::json added_token(const std::string& content) {
  return {{"content", content}, {"lstrip", false}, {"normalized", false},
          {"rstrip", false},    {"single_word", false}, {"special", true}};
}

}  // namespace

std::string chatml_template(const std::string& default_system_prompt) {
  // A system turn comes first: the conversation's own, else the default.
  std::string t =
      "{%- if messages and messages[0]['role'] == 'system' -%}"
      "{%- set system_message = messages[0]['content'] -%}"
      "{%- set loop_messages = messages[1:] -%}"
      "{%- else -%}";
  if (default_system_prompt.empty()) {
    t += "{%- set system_message = none -%}";
  } else {
    t += "{%- set system_message = " + nlohmann::json(default_system_prompt).dump() + " -%}";
  }
  t += "{%- set loop_messages = messages -%}"
       "{%- endif -%}"
       "{%- if system_message is not none -%}"
       "{{ '<|im_start|>system\\n' + system_message + '<|im_end|>\\n' }}"
       "{%- endif -%}"
       "{%- for message in loop_messages -%}"
       "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
       "{%- endfor -%}"
       "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}";
  return t;
}

void build_salamandra_tokenizer(const TokenizerTrainingOptions& options,
                                const std::string& out_dir) {
  namespace fs = std::filesystem;
  if (options.input_files.empty()) fail("tokenizer training: no input files given");
  std::string inputs;
  for (const auto& file : options.input_files) {
    std::error_code ec;
    if (!fs::is_regular_file(file, ec))
      fail("tokenizer training input ", file, ": not a readable file");
    if (file.find(',') != std::string::npos)
      fail("tokenizer training input ", file,
           ": sentencepiece takes a comma-separated list, rename the file");
    if (file.ends_with(".gz"))
      fail("tokenizer training input ", file, ": decompress .gz files first");
    if (!inputs.empty()) inputs += ',';
    inputs += file;
  }
  const int specials = 6 + options.reserved_tokens + 1 + (options.space_runs - 1) +
                       options.tab_runs + options.newline_runs;
  if (options.vocab_size < specials + 256 + 100)
    fail("tokenizer training: vocab_size ", options.vocab_size, " is too small; the ",
         specials, " special pieces and 256 byte pieces alone need ", specials + 256);

  // ids 4, 5 and the reserved tokens: control symbols in this order.
  std::string control = "<|im_start|>,<|im_end|>";
  for (int i = 1; i <= options.reserved_tokens; ++i)
    control += ",<|reserved_token_" + std::to_string(i) + "|>";
  // sentencepiece splits this list on commas only, so whitespace is safe.
  std::string user_defined = "\r";
  for (int n = 2; n <= options.space_runs; ++n) user_defined += "," + repeat(kSpaceSymbol, n);
  for (int n = 1; n <= options.tab_runs; ++n) user_defined += "," + repeat("\t", n);
  for (int n = 1; n <= options.newline_runs; ++n) user_defined += "," + repeat("\n", n);

  // A dir this call creates is removed again if training fails: a failed
  // build leaves no empty tokenizer dir behind.
  struct RemoveIfFailed {
    std::string dir;
    bool created;
    int exceptions = std::uncaught_exceptions();
    ~RemoveIfFailed() {
      std::error_code ignored;
      if (created && std::uncaught_exceptions() > exceptions) fs::remove_all(dir, ignored);
    }
  } cleanup{out_dir, !fs::exists(out_dir)};
  fs::create_directories(out_dir);
  std::unordered_map<std::string, std::string> args = {
      {"input", inputs},
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"remove_extra_whitespaces", "false"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "true"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "3"},
      {"control_symbols", control},
      {"user_defined_symbols", user_defined},
      {"input_sentence_size", std::to_string(options.max_sentences)},
      {"shuffle_input_sentence", "false"},
      {"max_sentence_length", "35145728"},
      {"num_threads", std::to_string(options.num_threads)},
      {"minloglevel", "2"},
  };
  std::string proto;
  auto status = sentencepiece::SentencePieceTrainer::Train(args, nullptr, &proto);
  if (!status.ok())
    fail("tokenizer training on ", inputs, " failed: ", status.ToString());
  retag_control_as_user_defined(proto, {"<|im_start|>", "<|im_end|>"});

  sentencepiece::SentencePieceProcessor check;
  ST_CHECK(check.LoadFromSerializedProto(proto).ok(), "retagged model does not load");
  ST_CHECK(check.PieceToId("<|im_start|>") == 4 && check.PieceToId("<|im_end|>") == 5 &&
           check.pad_id() == 3);

  nlohmann::json decoder = nlohmann::json::object();
  decoder["0"] = added_token("<unk>");
  decoder["1"] = added_token("<s>");
  decoder["2"] = added_token("</s>");
  decoder["3"] = added_token("<pad>");
  decoder["4"] = added_token("<|im_start|>");
  decoder["5"] = added_token("<|im_end|>");
  for (int i = 1; i <= options.reserved_tokens; ++i) {
    std::string name = "<|reserved_token_" + std::to_string(i) + "|>";
    ST_CHECK(check.PieceToId(name) == 5 + i, name);
    decoder[std::to_string(5 + i)] = added_token(name);
  }
  // Shaped like BSC's instruct tokenizer_config.json. legacy=false and no
  // add_prefix_space: the dummy prefix goes only at the very start of the
  // text, never after <|im_start|> etc., which is what sentencepiece does.
  nlohmann::json config = {
      {"add_bos_token", true},
      {"add_eos_token", false},
      {"added_tokens_decoder", decoder},
      {"additional_special_tokens", {"<|im_start|>", "<|im_end|>"}},
      {"bos_token", "<s>"},
      {"chat_template", chatml_template(options.default_system_prompt)},
      {"clean_up_tokenization_spaces", false},
      {"eos_token", "</s>"},
      {"legacy", false},
      {"model_max_length", options.model_max_length},
      {"pad_token", "<pad>"},
      {"padding_side", "right"},
      {"sp_model_kwargs", nlohmann::json::object()},
      {"spaces_between_special_tokens", false},
      {"tokenizer_class", "LlamaTokenizer"},
      {"unk_token", "<unk>"},
      {"use_default_system_prompt", false},
  };
  nlohmann::json special_map = {
      {"additional_special_tokens", {"<|im_start|>", "<|im_end|>"}},
      {"bos_token", "<s>"},
      {"eos_token", "</s>"},
      {"pad_token", "<pad>"},
      {"unk_token", "<unk>"},
  };
  write_file_atomic((fs::path(out_dir) / "tokenizer.model").string(), proto);
  write_file_atomic((fs::path(out_dir) / "tokenizer_config.json").string(),
                    config.dump(2) + "\n");
  write_file_atomic((fs::path(out_dir) / "special_tokens_map.json").string(),
                    special_map.dump(2) + "\n");
}

}  // namespace st
