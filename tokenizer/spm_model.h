// Reading a serialized sentencepiece ModelProto (tokenizer.model).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace st {

/// Piece types of a SentencePiece model (ModelProto.SentencePiece.Type).
enum class SpmPieceType : int {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

/// One vocabulary entry of a SentencePiece model.
struct SpmPiece {
  std::string piece;
  float score = 0;
  SpmPieceType type = SpmPieceType::kNormal;
};

/// What we read from a serialized sentencepiece ModelProto.
struct SpmModel {
  std::vector<SpmPiece> pieces;
  /// TrainerSpec.model_type: 1 unigram, 2 BPE, 3 word, 4 char.
  int model_type = 1;
  /// NormalizerSpec.add_dummy_prefix: a space is put before the text (llama.cpp's add_space_prefix).
  bool add_dummy_prefix = true;
};

/// Parses a serialized ModelProto (validated by sentencepiece itself);
/// throws st::Error naming `file` if it is not a loadable model.
SpmModel parse_spm_model(std::string_view bytes, const std::string& file);

}  // namespace st
