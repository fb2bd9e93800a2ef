// Python str operations on UTF-8 strings, by code point: the semantics of
// str methods and of the string filters built on them.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace st::jinja::pystr {

enum class Side { Both, Left, Right };
/// str.strip/lstrip/rstrip; without `chars` strips Unicode whitespace.
std::string strip(const std::string& s, const std::optional<std::string>& chars, Side side = Side::Both);
/// str.split(sep, maxsplit); sep nullopt splits on whitespace runs.
std::vector<std::string> split(const std::string& s, const std::optional<std::string>& sep, int64_t maxsplit = -1);
/// str.rsplit(sep, maxsplit).
std::vector<std::string> rsplit(const std::string& s, const std::optional<std::string>& sep, int64_t maxsplit = -1);
std::string upper(const std::string& s);
std::string lower(const std::string& s);
/// str.title(): a cased character after an uncased one starts a word.
std::string title(const std::string& s);
/// str.capitalize(): first character upper, the rest lower.
std::string capitalize(const std::string& s);
/// str.replace(old, new, count) (count < 0: all).
std::string replace(const std::string& s, const std::string& old, const std::string& rep, int64_t count = -1);
/// str.find / str.rfind in code points, -1 when absent.
int64_t find(const std::string& s, const std::string& sub, bool from_right = false);
/// str.count (non-overlapping).
int64_t count(const std::string& s, const std::string& sub);
/// str.center(width, fill).
std::string center(const std::string& s, int64_t width, const std::string& fill = " ");
/// str.splitlines() without keepends.
std::vector<std::string> splitlines(const std::string& s);

}  // namespace st::jinja::pystr
