#!/usr/bin/env python3
"""Parity of our Jinja interpreter (st_jinja) with transformers' chat-template rendering.

usage: jinja_parity.py JINJA_RENDER_MAIN

Every case is rendered by transformers' own compiled template
(`_compile_jinja_template`, i.e. jinja2's ImmutableSandboxedEnvironment as HF
configures it), with HF's AssistantTracker active so {% generation %} spans are
compared too, and by our driver. Text and spans must be identical; when jinja2
raises, ours must fail as well. Cases:
  jinja_cases/expressions.json   one-line templates over a shared context; its
                                 "refused" list holds constructs we reject on
                                 purpose (unsupported, or output Python would
                                 fill with a memory address): ours must fail
  jinja_cases/NAME.jinja         templates rendered with every context of
  jinja_cases/NAME.contexts.json
  the real Salamandra templates under $ST_SHARED_DATA/salamandra_chat_template
  (default <repo>/../shared/data; skipped when absent)
"""
import difflib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from transformers.utils.chat_template_utils import _compile_jinja_template

HERE = Path(__file__).resolve().parent
CASES = HERE / "jinja_cases"
REPO = HERE.parent.parent


def reference(template, context):
    """(text, spans in UTF-8 byte offsets) or (None, error) when jinja2 raises."""
    try:
        compiled = _compile_jinja_template(template)
        blocks, spans = [], []
        with compiled.environment.activate_tracker(blocks, spans):
            for block in compiled.generate(**context):
                blocks.append(block)
        text = "".join(blocks)
    except Exception as e:  # noqa: BLE001 - any jinja2 failure must be a failure of ours too
        return None, f"{type(e).__name__}: {e}"
    to_bytes = lambda i: len(text[:i].encode("utf-8"))  # noqa: E731
    return text, [[to_bytes(b), to_bytes(e)] for b, e in spans]


def ours(binary, template, context, workdir):
    tpath = Path(workdir) / "t.jinja"
    cpath = Path(workdir) / "c.json"
    tpath.write_bytes(template.encode("utf-8"))
    cpath.write_text(json.dumps(context, ensure_ascii=False), encoding="utf-8")
    proc = subprocess.run([binary, str(tpath), str(cpath), "--spans"], capture_output=True, timeout=60)
    out = proc.stdout.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        return None, out.strip() or proc.stderr.decode(errors="replace")
    result = json.loads(out)
    return result["text"], result["spans"]


def salamandra_cases():
    root = Path(os.environ.get("ST_SHARED_DATA", REPO.parent / "shared" / "data")) / "salamandra_chat_template"
    files = sorted(root.glob("*.jinja")) if root.is_dir() else []
    if not files:
        print(f"skip: no Salamandra templates under {root}")
    turns = [{"role": "user", "content": "Hola, com estàs?"}, {"role": "assistant", "content": " Bé, gràcies! "},
             {"role": "user", "content": "Explica'm \"Jinja\"."}]
    for path in files:
        template = path.read_text(encoding="utf-8")
        for system in (False, True):
            for date in (None, "2025-01-15"):
                for gen in (False, True):
                    messages = ([{"role": "system", "content": "Ets un assistent útil."}] if system else []) + turns
                    context = {"messages": messages, "add_generation_prompt": gen, "tools": None, "documents": None,
                               "bos_token": "<s>", "eos_token": "</s>"}
                    if date:
                        context["date_string"] = date
                    yield f"{path.name}[system={system},date={date},gen={gen}]", template, context


def all_cases():
    spec = json.loads((CASES / "expressions.json").read_text(encoding="utf-8"))
    for i, template in enumerate(spec["templates"]):
        yield f"expressions[{i}] {template!r}", template, spec["context"], False
    for i, template in enumerate(spec["refused"]):
        yield f"refused[{i}] {template!r}", template, spec["context"], True
    for path in sorted(CASES.glob("*.jinja")):
        template = path.read_text(encoding="utf-8")
        contexts = json.loads(path.with_suffix(".contexts.json").read_text(encoding="utf-8"))
        for i, context in enumerate(contexts):
            yield f"{path.name}[{i}]", template, context, False
    for name, template, context in salamandra_cases():
        yield name, template, context, False


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    failures, total = 0, 0
    with tempfile.TemporaryDirectory() as workdir:
        for name, template, context, refused in all_cases():
            total += 1
            our_text, our_extra = ours(binary, template, context, workdir)
            if refused:
                if our_text is not None:
                    print(f"FAIL {name}: must be refused but we rendered {our_text!r}")
                    failures += 1
                continue
            ref_text, ref_extra = reference(template, context)
            if ref_text is None and our_text is None:
                continue
            if ref_text is None:
                print(f"FAIL {name}: jinja2 raised ({ref_extra}) but we rendered {our_text!r}")
            elif our_text is None:
                print(f"FAIL {name}: we failed ({our_extra}) but jinja2 rendered {ref_text!r}")
            elif ref_text != our_text:
                diff = difflib.unified_diff(ref_text.splitlines(True), our_text.splitlines(True), "jinja2", "ours")
                print(f"FAIL {name}: renderings differ\n" + "".join(diff) + f"\n  jinja2: {ref_text!r}\n  ours:   {our_text!r}")
            elif ref_extra != our_extra:
                print(f"FAIL {name}: generation spans differ: jinja2 {ref_extra} ours {our_extra}")
            else:
                continue
            failures += 1
    print(f"{total - failures}/{total} cases identical")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
