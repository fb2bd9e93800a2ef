// Recognises a file's format from the keys of its first record.
#pragma once

#include "datasets/readers.h"

namespace st::datasets {

/// The format `record` is in, when its keys fit exactly one; fills
/// `resolved` with `given` plus what detection settled (which key holds the
/// messages). Unknown or ambiguous keys throw st::Error listing the keys
/// and asking for an explicit `format`.
DataFormat detect_format(const Json& record, const FieldMapping& given, const std::string& origin,
                         FieldMapping* resolved);

}  // namespace st::datasets
