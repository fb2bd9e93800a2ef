#include "tokenizer/spm_model.h"

#include <sentencepiece_processor.h>

#include <cstring>

#include "common/error.h"

namespace st {
namespace {

// --- protobuf reading --------------------------------------------------------

struct ProtoReader {
  std::string_view buf;
  size_t pos = 0;
  const std::string& file;

  [[noreturn]] void corrupt() const {
    fail(file, ": corrupt SentencePiece model (bad protobuf at byte ", pos, ")");
  }
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= buf.size()) corrupt();
      uint8_t byte = static_cast<uint8_t>(buf[pos++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
    corrupt();
  }
  std::string_view bytes() {
    uint64_t n = varint();
    if (n > buf.size() - pos) corrupt();
    std::string_view out = buf.substr(pos, n);
    pos += n;
    return out;
  }
  uint32_t fixed32() {
    if (buf.size() - pos < 4) corrupt();
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(buf[pos + i])) << (8 * i);
    pos += 4;
    return v;
  }
  void skip(int wire) {
    switch (wire) {
      case 0: varint(); return;
      case 1: if (buf.size() - pos < 8) corrupt(); pos += 8; return;
      case 2: bytes(); return;
      case 5: fixed32(); return;
      default: corrupt();
    }
  }
};

}  // namespace

SpmModel parse_spm_model(std::string_view bytes, const std::string& file) {
  sentencepiece::SentencePieceProcessor processor;
  auto status = processor.LoadFromSerializedProto(bytes);
  if (!status.ok())
    fail(file, ": not a valid SentencePiece model (", status.ToString(), ")");
  SpmModel model;
  ProtoReader top{bytes, 0, file};
  while (top.pos < bytes.size()) {
    uint64_t tag = top.varint();
    int field = static_cast<int>(tag >> 3), wire = static_cast<int>(tag & 7);
    if (field == 1 && wire == 2) {  // repeated SentencePiece pieces
      ProtoReader sub{top.bytes(), 0, file};
      SpmPiece piece;
      while (sub.pos < sub.buf.size()) {
        uint64_t t = sub.varint();
        int f = static_cast<int>(t >> 3), w = static_cast<int>(t & 7);
        if (f == 1 && w == 2) {
          piece.piece = std::string(sub.bytes());
        } else if (f == 2 && w == 5) {
          uint32_t raw = sub.fixed32();
          std::memcpy(&piece.score, &raw, 4);
        } else if (f == 3 && w == 0) {
          piece.type = static_cast<SpmPieceType>(sub.varint());
        } else {
          sub.skip(w);
        }
      }
      model.pieces.push_back(std::move(piece));
    } else if (field == 2 && wire == 2) {  // TrainerSpec
      ProtoReader sub{top.bytes(), 0, file};
      while (sub.pos < sub.buf.size()) {
        uint64_t t = sub.varint();
        int f = static_cast<int>(t >> 3), w = static_cast<int>(t & 7);
        if (f == 3 && w == 0) model.model_type = static_cast<int>(sub.varint());
        else sub.skip(w);
      }
    } else if (field == 3 && wire == 2) {  // NormalizerSpec
      ProtoReader sub{top.bytes(), 0, file};
      while (sub.pos < sub.buf.size()) {
        uint64_t t = sub.varint();
        int f = static_cast<int>(t >> 3), w = static_cast<int>(t & 7);
        if (f == 3 && w == 0) model.add_dummy_prefix = sub.varint() != 0;
        else sub.skip(w);
      }
    } else {
      top.skip(wire);
    }
  }
  if (static_cast<int>(model.pieces.size()) != processor.GetPieceSize())
    fail(file, ": corrupt SentencePiece model (", model.pieces.size(), " pieces read, ",
         processor.GetPieceSize(), " expected)");
  return model;
}

}  // namespace st
