#include "datasets/jinja/strings.h"

#include "common/error.h"
#include "datasets/jinja/utf8.h"

namespace st::jinja::pystr {

std::string strip(const std::string& s, const std::optional<std::string>& chars, Side side) {
  std::u32string cps = utf8::decode(s);
  std::u32string set = chars ? utf8::decode(*chars) : std::u32string();
  auto strippable = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : utf8::is_space(c); };
  size_t b = 0, e = cps.size();
  if (side != Side::Right)
    while (b < e && strippable(cps[b])) ++b;
  if (side != Side::Left)
    while (e > b && strippable(cps[e - 1])) --e;
  return utf8::encode(std::u32string_view(cps).substr(b, e - b));
}

namespace {

std::vector<std::string> split_whitespace(const std::string& s, int64_t maxsplit, bool from_right) {
  std::u32string cps = utf8::decode(s);
  std::vector<std::string> out;
  if (!from_right) {
    size_t i = 0, n = cps.size();
    while (true) {
      while (i < n && utf8::is_space(cps[i])) ++i;
      if (i == n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        size_t e = n;
        while (e > i && utf8::is_space(cps[e - 1])) --e;
        out.push_back(utf8::encode(cps.substr(i, e - i)));
        break;
      }
      size_t j = i;
      while (j < n && !utf8::is_space(cps[j])) ++j;
      out.push_back(utf8::encode(cps.substr(i, j - i)));
      i = j;
    }
    return out;
  }
  size_t e = cps.size();
  while (true) {
    while (e > 0 && utf8::is_space(cps[e - 1])) --e;
    if (e == 0) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      size_t b = 0;
      while (b < e && utf8::is_space(cps[b])) ++b;
      out.push_back(utf8::encode(cps.substr(b, e - b)));
      break;
    }
    size_t b = e;
    while (b > 0 && !utf8::is_space(cps[b - 1])) --b;
    out.push_back(utf8::encode(cps.substr(b, e - b)));
    e = b;
  }
  return {out.rbegin(), out.rend()};
}

}  // namespace

std::vector<std::string> split(const std::string& s, const std::optional<std::string>& sep, int64_t maxsplit) {
  if (!sep) return split_whitespace(s, maxsplit, false);
  if (sep->empty()) fail("empty separator");
  std::vector<std::string> out;
  size_t start = 0;
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    size_t at = s.find(*sep, start);
    if (at == std::string::npos) break;
    out.push_back(s.substr(start, at - start));
    start = at + sep->size();
  }
  out.push_back(s.substr(start));
  return out;
}

std::vector<std::string> rsplit(const std::string& s, const std::optional<std::string>& sep, int64_t maxsplit) {
  if (!sep) return split_whitespace(s, maxsplit, true);
  if (sep->empty()) fail("empty separator");
  std::vector<std::string> out;
  size_t end = s.size();
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    if (end < sep->size()) break;
    size_t at = s.rfind(*sep, end - sep->size());
    if (at == std::string::npos) break;
    out.push_back(s.substr(at + sep->size(), end - at - sep->size()));
    end = at;
  }
  out.push_back(s.substr(0, end));
  return {out.rbegin(), out.rend()};
}

std::string upper(const std::string& s) {
  std::u32string cps = utf8::decode(s);
  for (auto& c : cps) c = utf8::to_upper(c);
  return utf8::encode(cps);
}

std::string lower(const std::string& s) {
  std::u32string cps = utf8::decode(s);
  for (auto& c : cps) c = utf8::to_lower(c);
  return utf8::encode(cps);
}

std::string title(const std::string& s) {
  std::u32string cps = utf8::decode(s);
  bool previous_cased = false;
  for (auto& c : cps) {
    char32_t original = c;
    c = previous_cased ? utf8::to_lower(c) : utf8::to_upper(c);
    previous_cased = utf8::is_cased(original);
  }
  return utf8::encode(cps);
}

std::string capitalize(const std::string& s) {
  std::u32string cps = utf8::decode(s);
  for (size_t i = 0; i < cps.size(); ++i) cps[i] = i == 0 ? utf8::to_upper(cps[i]) : utf8::to_lower(cps[i]);
  return utf8::encode(cps);
}

std::string replace(const std::string& s, const std::string& old, const std::string& rep, int64_t count) {
  std::string out;
  if (old.empty()) {
    // Python inserts `rep` between every character and at both ends.
    std::u32string cps = utf8::decode(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += rep;
        ++done;
      }
      if (i < cps.size()) utf8::append(out, cps[i]);
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t at = s.find(old, pos);
    if (at == std::string::npos) break;
    out.append(s, pos, at - pos);
    out += rep;
    pos = at + old.size();
    ++done;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

int64_t find(const std::string& s, const std::string& sub, bool from_right) {
  size_t at = from_right ? s.rfind(sub) : s.find(sub);
  if (at == std::string::npos) return -1;
  return static_cast<int64_t>(utf8::length(std::string_view(s).substr(0, at)));
}

int64_t count(const std::string& s, const std::string& sub) {
  if (sub.empty()) return static_cast<int64_t>(utf8::length(s)) + 1;
  int64_t n = 0;
  for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
  return n;
}

std::string center(const std::string& s, int64_t width, const std::string& fill) {
  auto len = static_cast<int64_t>(utf8::length(s));
  if (width <= len) return s;
  int64_t marg = width - len;
  // CPython: left = marg / 2 + (marg & width & 1).
  int64_t left = marg / 2 + (marg & width & 1);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < marg - left; ++i) out += fill;
  return out;
}

std::vector<std::string> splitlines(const std::string& s) {
  std::u32string cps = utf8::decode(s);
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    char32_t c = cps[i];
    bool is_break = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
                    c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!is_break) continue;
    out.push_back(utf8::encode(cps.substr(start, i - start)));
    if (c == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < cps.size()) out.push_back(utf8::encode(cps.substr(start)));
  return out;
}

}  // namespace st::jinja::pystr
