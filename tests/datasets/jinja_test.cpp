// Unit tests of the chat-template interpreter. Expected strings are what
// jinja2 configured as transformers does renders (tests/parity/jinja_parity.py
// checks a larger corpus against jinja2 itself).
#include <gtest/gtest.h>

#include <thread>

#include "common/error.h"
#include "datasets/jinja/template.h"

namespace {

using st::jinja::Json;
using st::jinja::Template;

std::string render(const std::string& source, const Json& context = Json::object()) {
  return Template::parse(source).render(context);
}

// The error message of rendering (or parsing) `source`; fails the test if none.
std::string error_of(const std::string& source, const Json& context = Json::object()) {
  try {
    render(source, context);
  } catch (const st::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << source;
  return "";
}

TEST(JinjaText, DataCommentsRaw) {
  EXPECT_EQ(render("a{# c #}b"), "ab");
  EXPECT_EQ(render("{% raw %}{{ x }}{% endraw %}"), "{{ x }}");
  EXPECT_EQ(render("line\n"), "line");  // keep_trailing_newline is off
  EXPECT_EQ(render("a\r\nb"), "a\nb");
}

TEST(JinjaWhitespace, TrimAndLstripBlocks) {
  EXPECT_EQ(render("  {% if true %}\nx\n  {% endif %}\ny"), "x\ny");
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("a  {{- 'b' -}}  c"), "abc");
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(render("{% if true +%}\nx{% endif %}"), "\nx");
  EXPECT_EQ(render("  {{ 'v' }}\n"), "  v");  // lstrip_blocks leaves variable tags alone
  EXPECT_EQ(render("a\n  {# c #}\nb"), "a\nb");
}

TEST(JinjaLiterals, PythonStr) {
  EXPECT_EQ(render("{{ none }} {{ True }} {{ 1.0 }} {{ 1e-5 }} {{ 1e16 }} {{ 0.1 + 0.2 }}"),
            "None True 1.0 1e-05 1e+16 0.30000000000000004");
  EXPECT_EQ(render("{{ [1, 'a', none, {'k': (1,)}] }}"), "[1, 'a', None, {'k': (1,)}]");
  EXPECT_EQ(render("{{ [\"it's\", 'a\\nb', 'é'] }}"), "[\"it's\", 'a\\nb', 'é']");
  EXPECT_EQ(render("{{ 'x\\u00e9\\x41\\t' }}"), "xéA\t");
}

TEST(JinjaOperators, PythonArithmetic) {
  EXPECT_EQ(render("{{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 3 ** 2 }} {{ 'ab' * 2 }} {{ 1 ~ none }}"),
            "-4 2 3.5 64 abab 1None");
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 'b' in 'abc' }} {{ 3 not in [1] }} {{ 0 or 'y' }} {{ 1 and 2 }}"),
            "True True True y 2");
  EXPECT_EQ(render("{{ 'y' if false else 'n' }}[{{ 'y' if false }}]"), "n[]");
  EXPECT_NE(error_of("{{ 1 / 0 }}").find("division by zero"), std::string::npos);
  EXPECT_NE(error_of("{{ 1 + 'a' }}").find("can only concatenate str"), std::string::npos);
  EXPECT_NE(error_of("{{ 9999999999 * 9999999999 }}").find("overflow"), std::string::npos);
}

TEST(JinjaAccess, AttributesItemsSlices) {
  Json ctx = {{"m", {{"role", "user"}, {"tags", {"a", "b", "c"}}}}};
  EXPECT_EQ(render("{{ m.role }} {{ m['role'] }} {{ m.tags[-1] }} {{ m.tags.0 }} [{{ m.nope }}]", ctx),
            "user user c a []");
  EXPECT_EQ(render("{{ 'héllo'[1:3] }} {{ 'abc'[::-1] }} {{ m.tags[1:] }}", ctx), "él cba ['b', 'c']");
  EXPECT_EQ(render("{{ m.items() }}", {{"m", {{"a", 1}}}}), "dict_items([('a', 1)])");
}

TEST(JinjaUndefined, JinjaDefaultUndefined) {
  EXPECT_EQ(render("[{{ x }}]{{ x is defined }}{{ not x }}{% for i in x %}{{ i }}{% endfor %}{{ x | length }}"),
            "[]FalseTrue0");
  for (const char* bad : {"{{ x.y }}", "{{ x[0] }}", "{{ x + 1 }}", "{{ -x }}", "{{ x < 1 }}", "{{ x() }}",
                          "{{ x | int }}"})
    EXPECT_NE(error_of(bad).find("'x' is undefined"), std::string::npos) << bad;
  EXPECT_NE(error_of("{{ {'a': 1}.b.c }}").find("'dict object' has no attribute 'b'"), std::string::npos);
}

TEST(JinjaFilters, Strings) {
  EXPECT_EQ(render("{{ '  a ' | trim }}|{{ 'xax' | trim('x') }}|{{ 'hello world-x' | title }}|{{ 'hÉ' | capitalize }}"),
            "a|a|Hello World-X|Hé");
  EXPECT_EQ(render("{{ 'aaa' | replace('a', 'b', 2) }} {{ 'ÀB' | lower }} {{ 'é' | upper }} {{ 'héllo' | length }}"),
            "bba àb É 5");
  EXPECT_EQ(render("{{ 'a\nb' | indent(2, true) }}|{{ 'one two' | wordcount }}|{{ 'hi' | center(6) }}|"),
            "  a\n  b|2|  hi  |");
}

TEST(JinjaFilters, Sequences) {
  Json ctx = {{"u", Json::array({{{"n", "b"}, {"a", 2}}, {{"n", "a"}, {"a", 1}}, {{"n", "c"}, {"a", 2}}})}};
  EXPECT_EQ(render("{{ u | sort(attribute='a') | map(attribute='n') | join(',') }}", ctx), "a,b,c");
  EXPECT_EQ(render("{{ u | selectattr('a', 'eq', 2) | map(attribute='n') | list }}", ctx), "['b', 'c']");
  EXPECT_EQ(render("{{ u | rejectattr('a', 'gt', 1) | list | length }} {{ u | unique(attribute='a') | list | length }}", ctx),
            "1 2");
  EXPECT_EQ(render("{{ [3,1,2] | sort(reverse=true) }} {{ [1,2,3,4] | select('odd') | list }} {{ [1,2] | reverse | list }}"),
            "[3, 2, 1] [1, 3] [2, 1]");
  EXPECT_EQ(render("{{ [1,2] | first }}{{ [1,2] | last }} {{ [1,2,3] | sum }} {{ [1,5] | max }} {{ [1,2,3] | batch(2) | list }}"),
            "12 6 5 [[1, 2], [3]]");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2} | dictsort }} {{ {'a': 1} | items | list }}"), "[('a', 2), ('b', 1)] [('a', 1)]");
  EXPECT_EQ(render("{{ '' | default('d') }}{{ '' | default('d', true) }}{{ x | d('u') }}"), "du");
  EXPECT_EQ(render("{{ '42' | int }} {{ 'x' | int(7) }} {{ '2.5' | float }} {{ 2.5 | round }} {{ 1.25 | round(1) }} {{ -3 | abs }}"),
            "42 7 2.5 2.0 1.2 3");
  // A generator printed without |list would show a memory address in Python.
  EXPECT_NE(error_of("{{ [1] | map('string') }}").find("generator"), std::string::npos);
}

TEST(JinjaFilters, ToJsonLikeHf) {
  Json ctx = {{"t", {{"name", "f"}, {"d", "é\n"}, {"p", Json::array({1, 2.5, nullptr, true})}}}};
  EXPECT_EQ(render("{{ t | tojson }}", ctx), "{\"name\": \"f\", \"d\": \"é\\n\", \"p\": [1, 2.5, null, true]}");
  EXPECT_EQ(render("{{ {'b': [], 'a': {}} | tojson(indent=2, sort_keys=true) }}"), "{\n  \"a\": {},\n  \"b\": []\n}");
  EXPECT_EQ(render("{{ [1, {'a': 1}] | tojson(separators=(',', ':')) }}"), "[1,{\"a\":1}]");
  EXPECT_NE(error_of("{{ x | tojson }}").find("not JSON serializable"), std::string::npos);
}

TEST(JinjaMethods, StrAndDict) {
  EXPECT_EQ(render("{{ 'a b  c'.split() }} {{ 'a,b,c'.split(',', 1) }} {{ 'xxa'.lstrip('x') }} {{ 'ab'.startswith(('z', 'a')) }}"),
            "['a', 'b', 'c'] ['a', 'b,c'] a True");
  EXPECT_EQ(render("{{ {'a': 1}.get('b', 2) }} {{ {'a': 1}.keys() | list }} {{ 'héllo'.find('l') }}"), "2 ['a'] 2");
  EXPECT_NE(error_of("{{ [].append(1) }}").find("unsafe"), std::string::npos);
  EXPECT_NE(error_of("{{ 'a'.format() }}").find("unsupported method str.format"), std::string::npos);
}

TEST(JinjaTests, IsTests) {
  EXPECT_EQ(render("{{ 1 is integer }}{{ true is integer }}{{ true is number }}{{ 'a' is string }}{{ {} is mapping }}"
                   "{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 2 is in [2] }}{{ none is none }}{{ 1 is not none }}"),
            "TrueFalseTrueTrueTrueTrueTrueTrueTrueTrue");
}

TEST(JinjaStatements, LoopsAndScoping) {
  EXPECT_EQ(render("{% for x in [1,2,3] %}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.cycle('a','b') }},{% endfor %}"),
            "1TrueFalse3a,2FalseFalse3b,3FalseTrue3a,");
  EXPECT_EQ(render("{% for x in [1,2,3,4,5] if x is odd %}{{ x }}{{ loop.last }}{% endfor %}"), "1False3False5True");
  EXPECT_EQ(render("{% for x in [1,2,3,4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
            "13");
  EXPECT_EQ(render("{% for a, b in [[1,2]] %}{{ a }}{{ b }}{% endfor %}{% for x in [] %}{% else %}E{% endfor %}"), "12E");
  // A set inside a loop stays in the iteration; a namespace carries it out.
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1,2] %}{{ x }}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}"), "12121");
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for i in [1,2] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"), "3");
  EXPECT_EQ(render("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}"), "2");
  EXPECT_EQ(render("{% set t | upper %}a{{ 1 }}{% endset %}{{ t }}{% filter title %}b c{% endfilter %}"), "A1B C");
}

TEST(JinjaStatements, Macros) {
  EXPECT_EQ(render("{% macro g(n, p='!') %}hi {{ n }}{{ p }}{% endmacro %}{{ g('a') }} {{ g('b', p='?') }} [{{ g() }}]"),
            "hi a! hi b? [hi !]");
  EXPECT_NE(error_of("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}").find("takes not more than"), std::string::npos);
  EXPECT_NE(error_of("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}").find("recursion"), std::string::npos);
}

TEST(JinjaErrors, RaiseExceptionNamesPosition) {
  std::string e = error_of("ok\n{{ raise_exception('roles must alternate') }}");
  EXPECT_NE(e.find("roles must alternate"), std::string::npos);
  EXPECT_NE(e.find("chat_template:2:"), std::string::npos) << e;
}

TEST(JinjaErrors, UnsupportedConstructsAtParseTime) {
  auto parse_error = [](const std::string& source) {
    try {
      Template::parse(source);
    } catch (const st::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(parse_error("{{ x | xmlattr }}"), "unsupported filter 'xmlattr' at chat_template:1:8");
  EXPECT_NE(parse_error("{{ x | nope }}").find("unknown filter 'nope'"), std::string::npos);
  EXPECT_NE(parse_error("{% if x is nope %}{% endif %}").find("unknown test 'nope'"), std::string::npos);
  EXPECT_NE(parse_error("{% include 'x' %}").find("unsupported statement 'include'"), std::string::npos);
  EXPECT_NE(parse_error("{% frobnicate %}").find("unknown statement"), std::string::npos);
  EXPECT_NE(parse_error("{% if true %}").find("unexpected end of template"), std::string::npos);
  EXPECT_NE(parse_error("{{ 1 + }}").find("chat_template:1:"), std::string::npos);
  EXPECT_NE(parse_error("{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}").find("nested too deeply"), std::string::npos);
}

TEST(JinjaGeneration, SpansAreByteOffsets) {
  auto t = Template::parse("é{% generation %}ab{% endgeneration %}c{% generation %}{% endgeneration %}");
  std::vector<std::pair<size_t, size_t>> spans;
  EXPECT_EQ(t.render(Json::object(), &spans), "éabc");
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0], std::make_pair(size_t{2}, size_t{4}));
  EXPECT_EQ(spans[1], std::make_pair(size_t{5}, size_t{5}));
}

TEST(JinjaTemplate, ConcurrentRendersShareTheTree) {
  Template t = Template::parse(
      "{% set ns = namespace(s='') %}{% for m in messages %}{% set ns.s = ns.s + m %}{% endfor %}{{ ns.s }}");
  std::vector<std::thread> threads;
  std::vector<std::string> out(8);
  for (size_t i = 0; i < out.size(); ++i)
    threads.emplace_back([&, i] {
      Template copy = t;  // copies are cheap and share the syntax tree
      for (int k = 0; k < 200; ++k) out[i] = copy.render({{"messages", {std::to_string(i), "x"}}});
    });
  for (auto& th : threads) th.join();
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], std::to_string(i) + "x");
}

TEST(JinjaTemplate, GuardsOutputSize) {
  EXPECT_NE(error_of("{% for i in range(100000) %}{{ 'x' * 10000 }}{% endfor %}").find("exceeds"), std::string::npos);
}

}  // namespace
