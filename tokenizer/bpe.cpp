#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>

#include "common/error.h"

namespace st::tokenization {

void Bpe::MergeTable::reserve(size_t count) {
  size_t capacity = 16;
  int bits = 4;
  while (capacity < 2 * count) capacity <<= 1, ++bits;  // load factor <= 1/2
  keys_.assign(capacity, kEmpty);
  values_.assign(capacity, Merge{});
  shift_ = 64 - bits;
  size_ = 0;
}

void Bpe::MergeTable::insert(uint64_t key, Merge merge) {
  if (2 * (size_ + 1) > keys_.size()) {
    // Grow: re-insert everything into a table twice the size.
    std::vector<uint64_t> old_keys = std::move(keys_);
    std::vector<Merge> old_values = std::move(values_);
    reserve(std::max<size_t>(16, old_keys.size()));
    for (size_t i = 0; i < old_keys.size(); ++i)
      if (old_keys[i] != kEmpty) insert(old_keys[i], old_values[i]);
  }
  const size_t mask = keys_.size() - 1;
  for (size_t i = slot(key);; i = (i + 1) & mask) {
    if (keys_[i] == key) {
      values_[i] = merge;
      return;
    }
    if (keys_[i] == kEmpty) {
      keys_[i] = key;
      values_[i] = merge;
      ++size_;
      return;
    }
  }
}

const Bpe::Merge* Bpe::MergeTable::find(uint64_t key) const {
  if (keys_.empty()) return nullptr;
  const size_t mask = keys_.size() - 1;
  for (size_t i = slot(key);; i = (i + 1) & mask) {
    if (keys_[i] == key) return &values_[i];
    if (keys_[i] == kEmpty) return nullptr;
  }
}

Bpe::Bpe(const std::vector<std::string>& pieces,
         const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
         const std::string& origin)
    : options_(options) {
  vocab_.reserve(pieces.size());
  for (size_t id = 0; id < pieces.size(); ++id) vocab_.emplace(pieces[id], static_cast<int32_t>(id));
  merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    int32_t a = piece_id(left), b = piece_id(right);
    joined.assign(left).append(right);
    int32_t merged = piece_id(joined);
    if (a < 0 || b < 0 || merged < 0)
      fail(origin, ": merge ", rank, " (\"", left, "\" \"", right, "\"): ",
           a < 0 ? "\"" + left + "\" is not a piece" : b < 0 ? "\"" + right + "\" is not a piece"
                                                             : "\"" + joined + "\" is not a piece");
    merges_.insert((static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b),
                   Merge{static_cast<int32_t>(rank), merged});
    // A byte piece's text is not its character's, so chunks by character
    // would be unsound where byte pieces merge.
    if (left.starts_with("<0x") || right.starts_with("<0x")) chunkable_ = false;
  }
  // Which characters some piece holds side by side (see tokenize's chunks).
  adjacent_.reserve(pieces.size() * 2);
  for (const std::string& piece : pieces) {
    if (!valid_utf8(piece)) continue;  // such a piece is never a BPE symbol's text
    uint32_t previous = 0;
    for (size_t i = 0; i < piece.size();) {
      const size_t n = utf8_length(piece, i);
      const uint32_t cp = code_point(piece, i, n);
      if (i > 0) adjacent_.insert((static_cast<uint64_t>(previous) << 32) | cp, Merge{});
      previous = cp;
      i += n;
    }
  }
  for (int c = 0; c < 128; ++c) ascii_ids_[c] = piece_id(std::string(1, static_cast<char>(c)));
  for (size_t id = 0; id < pieces.size(); ++id) {
    const std::string& piece = pieces[id];
    if (piece.empty() || static_cast<uint8_t>(piece[0]) < 128) continue;
    const size_t n = utf8_length(piece, 0);
    if (n == piece.size()) char_ids_.emplace(code_point(piece, 0, n), piece_id(piece));
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_ids_[b] = piece_id(name);
  }
}

int32_t Bpe::piece_id(std::string_view piece) const {
  auto it = vocab_.find(std::string(piece));
  return it == vocab_.end() ? -1 : it->second;
}

void Bpe::tokenize(std::string_view word, const Span* origin, std::vector<int32_t>& ids,
                   std::vector<Span>* spans) const {
  if (word.empty()) return;
  if (options_.ignore_merges)
    if (int32_t id = piece_id(word); id >= 0) {
      ids.push_back(id);
      if (spans) spans->push_back({origin[0].begin, origin[word.size() - 1].end});
      return;
    }
  // Reused between calls: BPE runs once per word, and allocating these each
  // time cost more than merging short words.
  thread_local std::vector<Symbol> symbols;
  symbols.clear();
  // Chunks: no merge can join two characters that no piece holds side by
  // side (a merge's result is a piece, and it would hold them), so the word
  // is merged chunk by chunk between such characters, with small heaps --
  // the same result as one heap over the whole word. Symbols are linked
  // within their chunk only.
  thread_local std::vector<size_t> chunk_starts;
  chunk_starts.assign(1, 0);
  bool cut_here = false;
  auto add = [&](int32_t id, size_t len, Span span) {
    int32_t n = static_cast<int32_t>(symbols.size());
    if (cut_here && n > 0) {
      chunk_starts.push_back(static_cast<size_t>(n));
      cut_here = false;
    }
    const bool linked = n > 0 && chunk_starts.back() != static_cast<size_t>(n);
    if (linked) symbols.back().next = n;
    symbols.push_back({id, linked ? n - 1 : -1, -1, static_cast<uint32_t>(len), span.begin, span.end});
  };
  const bool chunked = chunkable_ && options_.unk_id < 0;
  uint32_t previous_cp = 0;
  bool previous_unknown = false;
  for (size_t i = 0; i < word.size();) {
    size_t n = utf8_length(word, i);
    ST_CHECK(n > 0, "invalid UTF-8 reached BPE");
    const Span span{origin[i].begin, origin[i + n - 1].end};
    const uint32_t cp = n == 1 ? static_cast<uint8_t>(word[i]) : code_point(word, i, n);
    // Cut between this character and the last one kept (a dropped one
    // leaves its neighbours adjacent).
    auto cut_before = [&] {
      if (chunked && !symbols.empty() && !adjacent_.find((static_cast<uint64_t>(previous_cp) << 32) | cp))
        cut_here = true;
      previous_cp = cp;
    };
    int32_t id = -1;
    if (n == 1) {
      id = ascii_ids_[static_cast<uint8_t>(word[i])];
    } else if (auto it = char_ids_.find(cp); it != char_ids_.end()) {
      id = it->second;
    }
    bool unknown = false;
    if (id >= 0) {
      cut_before();
      add(id, n, span);
    } else {
      bool all = options_.byte_fallback;
      for (size_t k = 0; all && k < n; ++k) all = byte_ids_[static_cast<uint8_t>(word[i + k])] >= 0;
      if (all) {
        cut_before();
        // Each byte piece stands for the whole character: a byte alone has no source.
        for (size_t k = 0; k < n; ++k) add(byte_ids_[static_cast<uint8_t>(word[i + k])], 1, span);
      } else if (options_.unk_id >= 0) {
        unknown = true;
        if (options_.fuse_unk && previous_unknown) {
          symbols.back().len += static_cast<uint32_t>(n);
          symbols.back().end = span.end;
        } else {
          add(options_.unk_id, n, span);
        }
      }
      // else: no unk token, the character is dropped (as tokenizers does).
    }
    previous_unknown = unknown;
    i += n;
  }
  for (size_t c = 0; c < chunk_starts.size(); ++c)
    merge(symbols, chunk_starts[c], c + 1 < chunk_starts.size() ? chunk_starts[c + 1] : symbols.size());
  for (const Symbol& s : symbols)
    if (s.len != 0) {
      ids.push_back(s.id);
      if (spans) spans->push_back({s.begin, s.end});
    }
}

// The merges within symbols[begin, end) (linked among themselves only):
// repeatedly the lowest-ranked pair present, leftmost first.
void Bpe::merge(std::vector<Symbol>& symbols, size_t begin, size_t end) const {
  // A possible merge of symbols[pos] with its right neighbour, ordered by
  // one key (rank, then position: lowest first); left/right say which pair
  // it was queued for. 16 bytes and one integer compare keep the heap cheap,
  // which is where long words spend their time.
  struct Candidate {
    uint64_t key;  // rank << 32 | pos
    int32_t left, right;
    bool operator<(const Candidate& o) const { return key > o.key; }  // std heaps pop the largest
  };
  auto lookup = [&](int32_t a, int32_t b) -> const Merge* {
    return merges_.find((static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b));
  };
  thread_local std::vector<Candidate> heap;
  auto push = [&](size_t pos, int32_t left, int32_t right) {
    if (const Merge* m = lookup(left, right)) {
      heap.push_back({(static_cast<uint64_t>(m->rank) << 32) | pos, left, right});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  heap.clear();
  for (size_t i = begin; i + 1 < end; ++i) push(i, symbols[i].id, symbols[i + 1].id);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    const size_t pos = static_cast<uint32_t>(top.key);
    Symbol& cur = symbols[pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const size_t next_pos = static_cast<size_t>(cur.next);
    const Symbol right = symbols[next_pos];
    const Merge* queued = lookup(top.left, top.right);
    // An expired entry: the pair here no longer makes this merge's piece
    // (tokenizers' test; the same pair as queued passes it at once).
    if (cur.id != top.left || right.id != top.right) {
      const Merge* now = lookup(cur.id, right.id);
      if (!now || now->new_id != queued->new_id) continue;
    }
    cur.id = queued->new_id;
    cur.len += right.len;
    cur.begin = std::min(cur.begin, right.begin);
    cur.end = std::max(cur.end, right.end);
    cur.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next >= 0) symbols[right.next].prev = static_cast<int32_t>(pos);
    if (cur.prev >= 0) push(static_cast<size_t>(cur.prev), symbols[cur.prev].id, cur.id);
    if (cur.next >= 0) push(pos, cur.id, symbols[cur.next].id);
  }
}

}  // namespace st::tokenization
