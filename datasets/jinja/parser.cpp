#include "datasets/jinja/parser.h"

#include <set>

#include "common/error.h"
#include "datasets/jinja/builtins.h"

namespace st::jinja {

namespace {

using TT = Token::Type;

// Nesting deeper than this (brackets, statements) is refused rather than
// risking the C++ stack on hostile input.
constexpr int kMaxNesting = 200;

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& name) : tokens_(std::move(tokens)), name_(name) {}

  Body parse_all() {
    Body body = subparse({});
    if (cur().type != TT::End) fail_at(cur(), "unexpected tag");
    return body;
  }

 private:
  std::vector<Token> tokens_;
  const std::string& name_;
  size_t i_ = 0;
  int depth_ = 0;
  std::vector<std::set<std::string>*> name_sinks_;  // names read inside the macros being parsed

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.fail_at(p.cur(), "template nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };

  const Token& cur() const { return tokens_[i_]; }
  const Token& look() const { return tokens_[std::min(i_ + 1, tokens_.size() - 1)]; }
  const Token& next() { return tokens_[i_ < tokens_.size() - 1 ? i_++ : i_]; }

  [[noreturn]] void fail_at(const Token& t, const std::string& message) const {
    throw Error(located(message, name_, t.pos));
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TT::End: return "end of template";
      case TT::BlockEnd: return "end of statement block";
      case TT::VarEnd: return "end of print statement";
      case TT::Data: return "template data";
      default: return "'" + t.text + "'";
    }
  }

  bool is_op(const char* op) const { return cur().type == TT::Operator && cur().text == op; }
  bool is_name(const char* name) const { return cur().type == TT::Name && cur().text == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail_at(cur(), cat("expected '", op, "', got ", describe(cur())));
  }
  std::string expect_name() {
    if (cur().type != TT::Name) fail_at(cur(), cat("expected a name, got ", describe(cur())));
    return next().text;
  }
  void expect_block_end() {
    if (cur().type != TT::BlockEnd) fail_at(cur(), cat("expected end of statement block, got ", describe(cur())));
    next();
  }

  std::shared_ptr<Expr> make(Expr::Kind kind, SourcePos pos) {
    auto e = std::make_shared<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }
  std::shared_ptr<Node> make_node(Node::Kind kind, SourcePos pos) {
    auto n = std::make_shared<Node>();
    n->kind = kind;
    n->pos = pos;
    return n;
  }

  // ---- statements --------------------------------------------------------

  // Parses until a block whose first name is in `end_names` (left unconsumed).
  Body subparse(const std::set<std::string>& end_names) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TT::End) {
        if (!end_names.empty())
          fail_at(t, cat("unexpected end of template, expected '", *end_names.begin(), "'"));
        return body;
      }
      if (t.type == TT::Data) {
        auto n = make_node(Node::Kind::Text, t.pos);
        n->text = t.text;
        body.push_back(n);
        next();
      } else if (t.type == TT::VarBegin) {
        next();
        auto n = make_node(Node::Kind::Output, t.pos);
        n->expr = parse_tuple(true, {});
        if (cur().type != TT::VarEnd) fail_at(cur(), cat("expected end of print statement, got ", describe(cur())));
        next();
        body.push_back(n);
      } else if (t.type == TT::BlockBegin) {
        next();
        if (cur().type == TT::Name && end_names.count(cur().text)) return body;
        body.push_back(parse_statement());
        expect_block_end();
      } else {
        fail_at(t, "unexpected " + describe(t));
      }
    }
  }

  // After a statement's head: `%}` then the body up to one of `end_names`
  // (consumed when drop_end, so the caller sees the closing block's `%}`).
  Body parse_statements(const std::set<std::string>& end_names, bool drop_end) {
    expect_block_end();
    Body body = subparse(end_names);
    if (drop_end) next();
    return body;
  }

  NodePtr parse_statement() {
    DepthGuard guard(*this);
    const Token& t = cur();
    if (t.type != TT::Name) fail_at(t, "tag name expected");
    const std::string& tag = t.text;
    if (tag == "if") return parse_if();
    if (tag == "for") return parse_for();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "filter") return parse_filter_block();
    if (tag == "print") {
      auto n = make_node(Node::Kind::Output, next().pos);
      n->expr = parse_tuple(true, {});
      return n;
    }
    if (tag == "generation") {
      auto n = make_node(Node::Kind::Generation, next().pos);
      n->body = parse_statements({"endgeneration"}, true);
      return n;
    }
    if (tag == "break" || tag == "continue") {
      auto n = make_node(tag == "break" ? Node::Kind::Break : Node::Kind::Continue, next().pos);
      return n;
    }
    static const std::set<std::string> kUnsupported = {"block", "extends", "include", "import", "from", "with",
                                                       "autoescape", "call", "do", "trans", "raw"};
    if (kUnsupported.count(tag)) fail_at(t, cat("unsupported statement '", tag, "'"));
    fail_at(t, cat("unknown statement '", tag, "'"));
  }

  NodePtr parse_if() {
    auto n = make_node(Node::Kind::If, next().pos);
    while (true) {
      ExprPtr cond = parse_tuple(false, {});
      Body body = parse_statements({"elif", "else", "endif"}, false);
      n->branches.emplace_back(cond, std::move(body));
      std::string which = next().text;
      if (which == "elif") continue;
      if (which == "else") n->branches.emplace_back(nullptr, parse_statements({"endif"}, true));
      return n;
    }
  }

  NodePtr parse_for() {
    auto n = make_node(Node::Kind::For, next().pos);
    n->target = parse_target("in");
    if (!skip_name("in")) fail_at(cur(), cat("expected 'in', got ", describe(cur())));
    n->expr = parse_tuple(false, {"recursive"});
    if (skip_name("if")) n->filter = parse_expression(true);
    if (is_name("recursive")) fail_at(cur(), "unsupported recursive for loop");
    n->body = parse_statements({"endfor", "else"}, false);
    if (next().text == "else") n->else_body = parse_statements({"endfor"}, true);
    return n;
  }

  // `a`, `a, b`, `(a, b)`: the names a for loop or set binds.
  Target parse_target(const char* end_name) {
    Target target;
    bool parenthesised = skip_op("(");
    while (true) {
      if (cur().type != TT::Name) fail_at(cur(), cat("can't assign to ", describe(cur())));
      target.names.push_back(next().text);
      if (!skip_op(",")) break;
      target.unpack = true;
      if ((parenthesised && is_op(")")) || is_name(end_name) || is_op("=") || cur().type == TT::BlockEnd) break;
    }
    if (parenthesised) {
      expect_op(")");
      target.unpack = target.unpack || target.names.size() > 1;
    }
    for (const auto& name : target.names)
      if (name == "true" || name == "false" || name == "none" || name == "True" || name == "False" || name == "None")
        fail_at(cur(), cat("can't assign to '", name, "'"));
    return target;
  }

  NodePtr parse_set() {
    SourcePos pos = next().pos;
    Target target;
    if (cur().type == TT::Name && look().type == TT::Operator && look().text == ".") {
      target.names.push_back(next().text);
      next();
      target.attribute = expect_name();
    } else {
      target = parse_target("");
    }
    if (skip_op("=")) {
      auto n = make_node(Node::Kind::Set, pos);
      n->target = std::move(target);
      n->expr = parse_tuple(true, {});
      return n;
    }
    auto n = make_node(Node::Kind::SetBlock, pos);
    n->target = std::move(target);
    if (is_op("|")) n->expr = parse_filter(nullptr, false);
    n->body = parse_statements({"endset"}, true);
    return n;
  }

  NodePtr parse_filter_block() {
    auto n = make_node(Node::Kind::FilterBlock, next().pos);
    n->expr = parse_filter(nullptr, true);
    n->body = parse_statements({"endfilter"}, true);
    return n;
  }

  NodePtr parse_macro() {
    auto n = make_node(Node::Kind::MacroDef, next().pos);
    auto macro = std::make_shared<Macro>();
    macro->name = expect_name();
    expect_op("(");
    while (!is_op(")")) {
      if (!macro->params.empty()) expect_op(",");
      if (is_op(")")) break;
      macro->params.push_back(expect_name());
      if (skip_op("=")) {
        macro->defaults.push_back(parse_expression(true));
      } else {
        if (!macro->defaults.empty() && macro->defaults.back())
          fail_at(cur(), "non-default argument follows default argument");
        macro->defaults.push_back(nullptr);
      }
    }
    expect_op(")");
    std::set<std::string> names;
    name_sinks_.push_back(&names);
    macro->body = parse_statements({"endmacro"}, true);
    name_sinks_.pop_back();
    macro->catch_varargs = names.count("varargs") > 0;
    macro->catch_kwargs = names.count("kwargs") > 0;
    if (names.count("caller")) fail_at(tokens_[i_ - 1], "unsupported: macro '" + macro->name + "' uses caller");
    n->macro = macro;
    return n;
  }

  // ---- expressions (jinja2/parser.py, lowest precedence first) ------------

  // Comma-separated expressions; a tuple when a comma appears.
  ExprPtr parse_tuple(bool with_condexpr, const std::set<std::string>& extra_end, bool explicit_parens = false) {
    SourcePos pos = cur().pos;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      const Token& t = cur();
      if (t.type == TT::VarEnd || t.type == TT::BlockEnd || (t.type == TT::Operator && t.text == ")") ||
          (t.type == TT::Name && extra_end.count(t.text)))
        break;
      items.push_back(parse_expression(with_condexpr));
      if (!is_op(",")) break;
      is_tuple = true;
    }
    if (!is_tuple) {
      if (!items.empty()) return items[0];
      if (!explicit_parens) fail_at(cur(), cat("expected an expression, got ", describe(cur())));
    }
    auto e = make(Expr::Kind::Tuple, pos);
    e->args = std::move(items);
    return e;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    SourcePos pos = cur().pos;
    ExprPtr expr = parse_or();
    while (skip_name("if")) {
      auto e = make(Expr::Kind::CondExpr, pos);
      e->args.push_back(parse_or());
      e->args.push_back(expr);
      e->args.push_back(skip_name("else") ? parse_condexpr() : nullptr);
      expr = e;
    }
    return expr;
  }

  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, SourcePos pos) {
    auto e = make(Expr::Kind::Binary, pos);
    e->name = op;
    e->args = {std::move(left), std::move(right)};
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      SourcePos pos = next().pos;
      left = binary("or", left, parse_and(), pos);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      SourcePos pos = next().pos;
      left = binary("and", left, parse_not(), pos);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto e = make(Expr::Kind::Unary, next().pos);
      e->name = "not";
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    SourcePos pos = cur().pos;
    ExprPtr first = parse_math1();
    auto e = make(Expr::Kind::Compare, pos);
    e->args.push_back(first);
    while (true) {
      static const std::set<std::string> kCompare = {"==", "!=", "<", "<=", ">", ">="};
      if (cur().type == TT::Operator && kCompare.count(cur().text)) {
        e->ops.push_back(next().text);
      } else if (skip_name("in")) {
        e->ops.push_back("in");
      } else if (is_name("not") && look().type == TT::Name && look().text == "in") {
        next();
        next();
        e->ops.push_back("notin");
      } else {
        break;
      }
      e->args.push_back(parse_math1());
    }
    return e->ops.empty() ? first : e;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& op = next();
      left = binary(op.text, left, parse_concat(), op.pos);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      SourcePos pos = next().pos;
      left = binary("~", left, parse_math2(), pos);
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& op = next();
      left = binary(op.text, left, parse_pow(), op.pos);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {  // left-associative in jinja2, unlike Python
      SourcePos pos = next().pos;
      left = binary("**", left, parse_unary(true), pos);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const Token& op = next();
      auto e = make(Expr::Kind::Unary, op.pos);
      e->name = op.text;
      e->args.push_back(parse_unary(false));
      node = e;
    } else {
      node = parse_primary();
    }
    node = parse_postfix(node);
    if (with_filter) node = parse_filter_expr(node);
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    auto constant = [&](Value v) {
      auto e = make(Expr::Kind::Const, t.pos);
      e->value = std::move(v);
      return e;
    };
    switch (t.type) {
      case TT::Name: {
        next();
        if (t.text == "true" || t.text == "True") return constant(true);
        if (t.text == "false" || t.text == "False") return constant(false);
        if (t.text == "none" || t.text == "None") return constant(None{});
        for (auto* sink : name_sinks_) sink->insert(t.text);
        auto e = make(Expr::Kind::Name, t.pos);
        e->name = t.text;
        return e;
      }
      case TT::String: {
        std::string s;
        while (cur().type == TT::String) s += next().text;  // adjacent literals concatenate
        return constant(std::move(s));
      }
      case TT::Integer:
        next();
        try {
          return constant(static_cast<int64_t>(std::stoll(t.text)));
        } catch (const std::exception&) {
          fail_at(t, "integer literal too large");
        }
      case TT::Float:
        next();
        return constant(std::stod(t.text));
      case TT::Operator:
        if (t.text == "(") {
          next();
          ExprPtr e = parse_tuple(true, {}, true);
          expect_op(")");
          return e;
        }
        if (t.text == "[") return parse_list();
        if (t.text == "{") return parse_dict();
        break;
      default: break;
    }
    fail_at(t, "unexpected " + describe(t));
  }

  ExprPtr parse_list() {
    auto e = make(Expr::Kind::List, next().pos);
    while (!is_op("]")) {
      if (!e->args.empty()) expect_op(",");
      if (is_op("]")) break;
      e->args.push_back(parse_expression(true));
    }
    expect_op("]");
    return e;
  }

  ExprPtr parse_dict() {
    auto e = make(Expr::Kind::Dict, next().pos);
    while (!is_op("}")) {
      if (!e->args.empty()) expect_op(",");
      if (is_op("}")) break;
      e->args.push_back(parse_expression(true));
      expect_op(":");
      e->args.push_back(parse_expression(true));
    }
    expect_op("}");
    return e;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".")) {
        SourcePos pos = next().pos;
        const Token& attr = cur();
        if (attr.type == TT::Name) {
          auto e = make(Expr::Kind::GetAttr, pos);
          e->name = next().text;
          e->args.push_back(node);
          node = e;
        } else if (attr.type == TT::Integer) {  // `x.0` is `x[0]`
          next();
          auto index = make(Expr::Kind::Const, attr.pos);
          index->value = static_cast<int64_t>(std::stoll(attr.text));
          auto e = make(Expr::Kind::GetItem, pos);
          e->args = {node, index};
          node = e;
        } else {
          fail_at(attr, "expected name or number");
        }
      } else if (is_op("[")) {
        node = parse_subscript(node);
      } else if (is_op("(")) {
        node = parse_call(node);
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    SourcePos pos = next().pos;
    std::vector<ExprPtr> parts;
    bool is_slice = false;
    // [a], [a:b], [a:b:c] with any bound omitted.
    ExprPtr bounds[3];
    int which = 0;
    if (!is_op(":")) bounds[0] = parse_expression(true);
    while (skip_op(":")) {
      is_slice = true;
      if (++which > 2) fail_at(cur(), "invalid slice");
      if (!is_op(":") && !is_op("]")) bounds[which] = parse_expression(true);
    }
    if (is_op(",")) fail_at(cur(), "unsupported tuple subscript");
    expect_op("]");
    auto e = make(is_slice ? Expr::Kind::Slice : Expr::Kind::GetItem, pos);
    e->args.push_back(node);
    if (is_slice) {
      for (auto& b : bounds) e->args.push_back(b);
    } else {
      e->args.push_back(bounds[0]);
    }
    return e;
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto e = make(Expr::Kind::Call, cur().pos);
    e->args.push_back(callee);
    parse_args_into(*e);
    return e;
  }

  // `(a, b, k=v)` after a callee, filter or test name; args[0] is already the subject.
  void parse_args_into(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (is_op("*") || is_op("**")) fail_at(cur(), "unsupported *args / **kwargs in call");
      if (cur().type == TT::Name && look().type == TT::Operator && look().text == "=") {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(key, parse_expression(true));
      } else {
        if (!e.kwargs.empty()) fail_at(cur(), "positional argument follows keyword argument");
        e.args.push_back(parse_expression(true));
      }
    }
    expect_op(")");
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (is_op(".")) {
      next();
      name += "." + expect_name();
    }
    return name;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter(node, false);
      } else if (is_name("is")) {
        node = parse_test(node);
      } else if (is_op("(")) {
        node = parse_call(node);
      } else {
        return node;
      }
    }
  }

  // `| f1(args) | f2 ...`; with start_inline the first filter has no pipe
  // (`{% filter upper %}`). A null subject stands for a block's body.
  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      const Token& t = cur();
      std::string name = parse_dotted_name();
      if (is_unsupported_filter(name)) fail_at(t, cat("unsupported filter '", name, "'"));
      if (!has_filter(name)) fail_at(t, cat("unknown filter '", name, "'"));
      auto e = make(Expr::Kind::Filter, t.pos);
      e->name = name;
      e->args.push_back(node);
      if (is_op("(")) parse_args_into(*e);
      node = e;
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    SourcePos pos = next().pos;
    bool negated = skip_name("not");
    const Token& t = cur();
    std::string name = parse_dotted_name();
    if (is_unsupported_test(name)) fail_at(t, cat("unsupported test '", name, "'"));
    if (!has_test(name)) fail_at(t, cat("unknown test '", name, "'"));
    auto e = make(Expr::Kind::Test, pos);
    e->name = name;
    e->args.push_back(node);
    const Token& a = cur();
    if (is_op("(")) {
      parse_args_into(*e);
    } else if ((a.type == TT::Name || a.type == TT::String || a.type == TT::Integer || a.type == TT::Float ||
                (a.type == TT::Operator && (a.text == "[" || a.text == "{"))) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail_at(a, "you cannot chain multiple tests with is");
      e->args.push_back(parse_postfix(parse_primary()));
    }
    if (!negated) return e;
    auto n = make(Expr::Kind::Unary, pos);
    n->name = "not";
    n->args.push_back(e);
    return n;
  }
};

}  // namespace

Body parse_template(std::string_view source, const std::string& name) {
  return Parser(tokenize(source, name), name).parse_all();
}

}  // namespace st::jinja
