// Tokenizer parity driver: encodes and decodes every record of the given text
// files with st::Tokenizer and compares with the JSONL written by
// tests/parity/tokenizer_oracle.py (Hugging Face) for the same files.
// Exit 0 only if ids, ids without special tokens, and both decodes agree on
// every record; otherwise prints the first mismatches (file:line, both id
// lists) and exits 1. Records are split exactly as the oracle splits them.
//
// Usage: tokenizer_parity_main MODEL_DIR ORACLE.jsonl [--lines-per-record K] FILE...
#include <zlib.h>

#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "tokenizer/tokenizer.h"

namespace {

// Whole file, gunzipped when the name ends in .gz.
std::string read_text(const std::string& path) {
  if (!path.ends_with(".gz")) return st::read_file(path);
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) st::fail(path, ": cannot open");
  std::string data;
  char buffer[1 << 16];
  int n;
  while ((n = gzread(file, buffer, sizeof buffer)) > 0) data.append(buffer, n);
  bool failed = n < 0;
  gzclose(file);
  if (failed) st::fail(path, ": not a valid gzip file");
  return data;
}

struct Record {
  int line;
  std::string text;
};

// Same rule as the oracle: split on "\n", drop the empty piece after a final
// "\n", group K lines per record with their "\n" kept.
std::vector<Record> read_records(const std::string& path, int lines_per_record) {
  std::string data = read_text(path);
  std::vector<std::string> lines;
  size_t start = 0;
  while (true) {
    size_t end = data.find('\n', start);
    if (end == std::string::npos) {
      lines.push_back(data.substr(start));
      break;
    }
    lines.push_back(data.substr(start, end - start));
    start = end + 1;
  }
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::vector<Record> records;
  if (lines_per_record <= 1) {
    for (size_t i = 0; i < lines.size(); ++i) records.push_back({static_cast<int>(i + 1), lines[i]});
    return records;
  }
  for (size_t i = 0; i < lines.size(); i += lines_per_record) {
    Record r{static_cast<int>(i + 1), ""};
    for (size_t k = i; k < std::min(lines.size(), i + lines_per_record); ++k) r.text += lines[k] + "\n";
    records.push_back(std::move(r));
  }
  return records;
}

std::string join(const std::vector<int32_t>& ids) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < ids.size(); ++i) out << (i ? "," : "") << ids[i];
  out << ']';
  return out.str();
}

int run(int argc, char** argv) {
  if (argc < 4)
    throw st::UsageError(
        "usage: tokenizer_parity_main MODEL_DIR ORACLE.jsonl [--lines-per-record K] FILE...");
  const std::string model_dir = argv[1], oracle_path = argv[2];
  int lines_per_record = 1;
  std::vector<std::string> files;
  for (int i = 3; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--lines-per-record" && i + 1 < argc) lines_per_record = std::stoi(argv[++i]);
    else files.push_back(arg);
  }
  auto t0 = std::chrono::steady_clock::now();
  st::Tokenizer tok = st::Tokenizer::load(model_dir);
  auto t1 = std::chrono::steady_clock::now();

  // The oracle's rows, keyed by file and first line.
  std::map<std::pair<std::string, int>, nlohmann::json> oracle;
  std::istringstream lines(st::read_file(oracle_path));
  std::string row;
  int row_number = 0;
  while (std::getline(lines, row)) {
    ++row_number;
    if (row.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(row);
    } catch (const nlohmann::json::exception& e) {
      st::fail(oracle_path, ":", row_number, ": not valid JSON: ", e.what());
    }
    std::pair<std::string, int> key{j.at("file").get<std::string>(), j.at("line").get<int>()};
    oracle[key] = std::move(j);
  }

  size_t records = 0, mismatches = 0, roundtrips = 0;
  double encode_s = 0;
  for (const auto& file : files) {
    for (const Record& r : read_records(file, lines_per_record)) {
      ++records;
      auto it = oracle.find({file, r.line});
      if (it == oracle.end()) {
        if (++mismatches <= 10) std::cout << file << ":" << r.line << ": missing from the oracle\n";
        continue;
      }
      const nlohmann::json& want = it->second;
      auto e0 = std::chrono::steady_clock::now();
      std::vector<int32_t> ids = tok.encode(r.text);
      std::vector<int32_t> plain = tok.encode(r.text, false);
      encode_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
      std::string decoded = tok.decode(ids), decoded_skip = tok.decode(ids, true);
      auto want_ids = want.at("ids").get<std::vector<int32_t>>();
      auto want_plain = want.at("ids_plain").get<std::vector<int32_t>>();
      bool same = ids == want_ids && plain == want_plain &&
                  decoded == want.at("decoded").get<std::string>() &&
                  decoded_skip == want.at("decoded_skip").get<std::string>();
      if (decoded_skip == r.text) ++roundtrips;
      if (same) continue;
      if (++mismatches <= 10) {
        std::cout << file << ":" << r.line << ": MISMATCH\n  text:   " << nlohmann::json(r.text).dump()
                  << "\n  hf ids: " << join(want_ids) << "\n  st ids: " << join(ids)
                  << "\n  hf plain: " << join(want_plain) << "\n  st plain: " << join(plain)
                  << "\n  hf decoded: " << want.at("decoded").dump()
                  << "\n  st decoded: " << nlohmann::json(decoded).dump()
                  << "\n  hf decoded_skip: " << want.at("decoded_skip").dump()
                  << "\n  st decoded_skip: " << nlohmann::json(decoded_skip).dump() << "\n";
      }
    }
  }
  auto t2 = std::chrono::steady_clock::now();
  std::cout << "load " << std::chrono::duration<double>(t1 - t0).count() << " s, encode "
            << encode_s << " s, total " << std::chrono::duration<double>(t2 - t0).count()
            << " s; " << roundtrips << "/" << records << " records decode back to their text\n";
  if (mismatches) {
    std::cout << records << " lines, " << files.size() << " files: " << mismatches
              << " MISMATCHES\n";
    return 1;
  }
  std::cout << records << " lines, " << files.size() << " files: all identical\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const st::UsageError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
