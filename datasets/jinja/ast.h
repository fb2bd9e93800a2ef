// The syntax tree the parser builds and the renderer walks. One struct per
// family (expressions, statements) with a kind tag keeps the interpreter a
// plain switch; fields unused by a kind stay empty.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "datasets/jinja/lexer.h"
#include "datasets/jinja/value.h"

namespace st::jinja {

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;

struct Expr {
  enum class Kind {
    Const,      // value
    Name,       // name
    List,       // args
    Tuple,      // args
    Dict,       // args: key0, value0, key1, value1, ...
    GetAttr,    // args[0].name
    GetItem,    // args[0][args[1]]
    Slice,      // args[0][args[1]:args[2]:args[3]], missing bounds are null
    Call,       // args[0](args[1:], kwargs)
    Filter,     // args[0] | name(args[1:], kwargs); args[0] null means the block body
    Test,       // args[0] is name(args[1:], kwargs)
    Unary,      // op in {"-", "+", "not"}: op args[0]
    Binary,     // args[0] op args[1], op in + - * / // % ** ~ and or
    Compare,    // args[0] ops[0] args[1] ops[1] args[2] ... (Python chaining)
    CondExpr,   // args[1] if args[0] else args[2] (args[2] null: undefined)
  };
  Kind kind;
  SourcePos pos;
  std::string name;                                  // Name, GetAttr, Filter, Test; operator of Unary/Binary
  Value value;                                       // Const (scalars only, safe to share)
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;                      // Compare: "==", "!=", "<", "<=", ">", ">=", "in", "notin"
};

/// Left side of an assignment: `x`, `a, b` (unpacking) or `ns.attr`.
struct Target {
  std::vector<std::string> names;
  bool unpack = false;    // tuple target, even with one name (`a,`)
  std::string attribute;  // set only for `{% set ns.attr = ... %}`; names[0] is the namespace
};

struct Node;
using NodePtr = std::shared_ptr<const Node>;
using Body = std::vector<NodePtr>;

struct Macro {
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // aligned with params; null where none
  Body body;
  bool catch_varargs = false;     // the body reads `varargs`: extra positional args are allowed
  bool catch_kwargs = false;      // the body reads `kwargs`: extra keyword args are allowed
};

struct Node {
  enum class Kind {
    Text,        // text
    Output,      // {{ expr }}
    If,          // branches (a null condition is the else branch)
    For,         // target in expr [if filter] body [else else_body]
    Set,         // target = expr
    SetBlock,    // {% set target [| filters] %}body{% endset %}; expr is the filter chain or null
    MacroDef,    // macro
    FilterBlock, // {% filter chain %}body{% endfilter %}; expr is the chain applied to the body
    Generation,  // {% generation %}body{% endgeneration %}
    Break,
    Continue,
  };
  Kind kind;
  SourcePos pos;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  Target target;
  Body body;
  Body else_body;
  std::vector<std::pair<ExprPtr, Body>> branches;
  std::shared_ptr<const Macro> macro;
};

}  // namespace st::jinja
