#include "common/sha256.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "common/error.h"

namespace st {

std::string sha256_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!file) fail("cannot read ", path, ": ", std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  ST_CHECK(context && EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) == 1, "SHA-256 unavailable");
  std::vector<unsigned char> block(1 << 20);
  size_t got;
  while ((got = std::fread(block.data(), 1, block.size(), file.get())) > 0)
    ST_CHECK(EVP_DigestUpdate(context.get(), block.data(), got) == 1, "SHA-256 update failed");
  if (std::ferror(file.get())) fail("cannot read ", path, ": read error");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  ST_CHECK(EVP_DigestFinal_ex(context.get(), digest, &size) == 1 && size == 32, "SHA-256 final failed");
  std::string hex;
  char two[3];
  for (unsigned int i = 0; i < size; ++i) {
    std::snprintf(two, sizeof two, "%02x", digest[i]);
    hex += two;
  }
  return hex;
}

}  // namespace st
