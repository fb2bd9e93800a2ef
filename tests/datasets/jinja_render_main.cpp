// jinja_render_main TEMPLATE_FILE CONTEXT_JSON_FILE [--spans]
// Prints the rendering to stdout (with --spans: a JSON object holding the text
// and the generation spans); on error prints the message and exits 1.
// Used by tests/parity/jinja_parity.py.
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/error.h"
#include "datasets/jinja/template.h"

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4 || (argc == 4 && std::string(argv[3]) != "--spans")) {
    std::cerr << "usage: jinja_render_main TEMPLATE_FILE CONTEXT_JSON_FILE [--spans]\n";
    return 2;
  }
  try {
    auto read = [](const char* path) {
      std::ifstream in(path, std::ios::binary);
      if (!in) st::fail("cannot open ", path);
      std::ostringstream s;
      s << in.rdbuf();
      return s.str();
    };
    auto tmpl = st::jinja::Template::parse(read(argv[1]));
    st::jinja::Json context;
    try {
      context = st::jinja::Json::parse(read(argv[2]));
    } catch (const std::exception& e) {
      st::fail(argv[2], ": invalid JSON: ", e.what());
    }
    std::vector<std::pair<size_t, size_t>> spans;
    std::string out = tmpl.render(context, argc == 4 ? &spans : nullptr);
    if (argc == 4) {
      st::jinja::Json result = {{"text", out}, {"spans", spans}};
      std::cout << result.dump();
    } else {
      std::cout << out;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cout << "error: " << e.what() << "\n";
    return 1;
  }
}
