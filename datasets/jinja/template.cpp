#include "datasets/jinja/template.h"

#include "datasets/jinja/parser.h"
#include "datasets/jinja/renderer.h"

namespace st::jinja {

Template Template::parse(std::string_view source, std::string name) {
  Template t;
  t.body_ = std::make_shared<const Body>(parse_template(source, name));
  t.name_ = std::move(name);
  return t;
}

std::string Template::render(const Json& context, std::vector<std::pair<size_t, size_t>>* generation_spans) const {
  if (generation_spans) generation_spans->clear();
  Renderer renderer(name_, context, generation_spans);
  return renderer.render(*body_);
}

}  // namespace st::jinja
