// SHA-256 of a file (OpenSSL's libcrypto), for the digests people check by
// hand with sha256sum: the data files a model card names.
#pragma once

#include <string>

namespace st {

/// 64 lowercase hex digits; st::Error naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace st
