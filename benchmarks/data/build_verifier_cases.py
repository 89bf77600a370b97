"""Builds ``benchmarks/data/verifier_cases.jsonl``: the labelled set of ``benchmarks/verifiers.py``.

Each case is one JSON object::

    {"id", "category", "verifier", "kind", "gold", "response", "equal", "source", "note"?, "choices"?}

``kind`` is ``"response"`` (a whole model response: the verifier finds the
answer, ``check``) or ``"answer"`` (an answer already extracted, ``verify``),
``equal`` the label, ``source`` where the case comes from. Categories:

* ``grader_tests`` -- the cases of other projects' grader test suites:
  Math-Verify's ``tests/test_all.py`` (read from a checkout given by
  ``--math-verify``; its labels, except the few listed in :data:`MV_SKIP`
  whose label is a parser limitation or an ambiguity rather than a fact) and
  Hendrycks' MATH ``modeling/math_equivalence_test.py`` (copied below);
* ``answer_keys`` -- MATH-500, GSM8K and AIME answer keys (the plugin's bundled
  data) with one realistic rewriting that is equal and one perturbation that is
  not, each inside a whole response;
* ``whole_responses`` -- whole model responses in the styles real models write
  (``#### 228``, ``The answer is: 10.00``, the Minerva "Final Answer" line,
  several boxes, a matrix after a colon, the final sentence's math), written
  for this set;
* ``multilingual`` -- final-answer phrases in Chinese, Japanese, French,
  Spanish, Portuguese, German, Russian and Hindi;
* ``equivalences`` -- one row per written equivalence policy (percent, word
  multipliers, named tuples, shorthand TeX, glued units and currency,
  inequality relations, long decimals of fractions) and its negatives;
* ``mcq`` -- multiple-choice responses, with and without the row's choices.

Run:  python benchmarks/data/build_verifier_cases.py --math-verify PATH_TO_MATH_VERIFY_CHECKOUT
(the output is committed; rebuilding needs Math-Verify's git checkout at
commit :data:`MV_COMMIT` and the plugin's bundled data).
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "plugins" / "grpo-rewards-math" / "grpo_rewards_math" / "data"
OUT = Path(__file__).resolve().parent / "verifier_cases.jsonl"

MV_COMMIT = "5d148cfaaf99214c2e4ffb4bc497ab042c592a7a"
MV_SRC = f"huggingface/Math-Verify@{MV_COMMIT[:7]} tests/test_all.py"
MATH_SRC = "hendrycks/math@5f3bf91 modeling/math_equivalence_test.py"
OWN = "written for this set (grpo-core)"

#: Math-Verify test rows left out, with why: the label reflects the library's
#: parser or its 6-digit rounding rather than whether the answers are equal
MV_SKIP = {
    ("1000.99", "1000,99"): "decimal comma: ambiguous with a list of two numbers",
    ("1,22", "1.22"): "decimal comma: ambiguous with a list",
    ("0,111", "0.111"): "decimal comma: 0,111 may be 111 (thousands) or a list",
    ("2.74", "Soucis : 2,74 $ a.."): "decimal comma: ambiguous with a list",
    ("$9$", "Answer $ \n 9 \n $"): "labelled unequal for a parser reason: a grader finds 9",
    ("$9$", "Answer \\( \n 9 \n \\)"): "labelled unequal for a parser reason: a grader finds 9",
}


def _strip_dollars(s: str) -> str:
    s = s.strip()
    if s.startswith("$") and s.endswith("$") and s.count("$") == 2:
        return s[1:-1].strip()
    return s


_PROSE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}\s+[A-Za-z]{2,}")
_DELIMITED = re.compile(r"\\boxed|\\fbox|\$|\\\(|\\\[")


def _kind(pred: str) -> str:
    """A whole response when it has a box, math delimiters or prose; else an answer already extracted."""
    return "response" if (_DELIMITED.search(pred) or _PROSE.search(pred)) else "answer"


def _is_solution(gold: str) -> bool:
    """A gold that is a whole worked solution rather than an answer key."""
    return len(gold) > 200 and bool(_PROSE.search(gold))


def math_verify_cases(checkout: Path) -> list[dict]:
    src = subprocess.check_output(["git", "-C", str(checkout), "show", f"{MV_COMMIT}:tests/test_all.py"], text=True)
    out = []
    for fn in ast.parse(src).body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        for dec in fn.decorator_list:
            if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize"):
                continue
            names = dec.args[0].value if isinstance(dec.args[0], ast.Constant) else ""
            if not names.replace(" ", "").startswith("gold,pred,expected"):
                continue
            for node in getattr(dec.args[1], "elts", []):
                try:
                    row = ast.literal_eval(node)
                except ValueError:
                    continue  # a row built with an f-string or a call: not a literal case
                gold, pred, expected = row[:3]
                extra = row[3:]
                if (gold, pred) in MV_SKIP or _is_solution(gold):
                    continue  # see MV_SKIP; a worked solution as gold is not an answer key
                if extra and extra[0] != 6:
                    continue  # compared at a coarser rounding than the library's default
                out.append({
                    "category": "grader_tests", "verifier": "math", "kind": _kind(pred),
                    "gold": _strip_dollars(gold), "response": pred, "equal": bool(expected),
                    "source": f"{MV_SRC}::{fn.name}",
                })
    return out


#: Hendrycks' MATH equivalence tests (gold, pred, equal), copied from the file named in MATH_SRC
MATH_EQUIV = [
    ("\\tfrac{1}{2} + \\frac1{72}", "\\\\frac{1}{2} + 2/3", False, "test_fractions"),
    ("10, 4, -2", "4, 10, -2", False, "test_order"),
    ("10, 4, 2", "4, 12, 2", False, "test_order2"),
    ("\\tfrac{1}{2} +\\! \\frac1{72}", "\\dfrac{1}{2} +\\frac{1}{72}", True, "test_dfrac"),
    ("10\\text{ units}", "10 ", True, "test_units"),
    ("10\\text{ units}", "100 ", False, "test_units2"),
    ("10", "\\$10", True, "test_dollars"),
    ("\\left(x-2\\right)\\left(x+2\\right)", "(x-2)(x+2)", True, "test_parentheses"),
    ("0.1, 4, 2", "4, .1, 2", False, "test_decimals"),
    ("0.1", ".1", True, "test_decimals2"),
    ("10\\%", "10", True, "test_percentage"),
    ("10\\sqrt{3} + \\sqrt4", "10\\sqrt3 + \\sqrt{4}", True, "test_sqrt"),
    ("\\frac34i", "\\frac{3}{4}i", True, "test_frac"),
    ("\\tfrac83", "\\frac{8}{3}", True, "test_tfrac"),
    ("5x - 7y + 11z + 4 = 0", "x + y - z + 2 = 0", False, "test_expression"),
    ("1/2", "\\frac{1}{2}", True, "test_half"),
]

#: MATH tests left out, with why: the label is the MATH grader's string comparison, not a fact
MATH_SKIP = {
    "test_order": "an unordered list of solutions ('10, 4, -2') is the same set in another order; "
                  "MATH's string grader says unequal, our policy (bare comma lists are sets) says equal",
    "test_decimals": "same as test_order, with .1 for 0.1",
}

#: GSM8K-style solutions in the two answer formats lm-evaluation-harness's gsm8k tasks read
LM_EVAL_SRC = ("openai/grade-school-math solutions (answers rewritten for this set) in the answer formats that "
               "EleutherAI/lm-evaluation-harness's gsm8k ('#### N', strict-match) and gsm8k-cot ('The answer is N.') read")
LM_EVAL = [
    ("72", "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n#### 72", True),
    ("10", "Weng earns 12/60 = $0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = $10.\n#### 10", True),
    ("5", "Betty has 100/2 = $50.\nHer grandparents gave her 15*2 = $30.\nShe needs 100-50-30-15 = $5 more.\n#### 5", True),
    ("42", "Julie read 12 x 2 = 24 pages today.\nSo she was able to read 12 + 24 = 36 pages since yesterday.\nThere are 120 - 36 = 84 pages left to be read.\nSince she wants to read half, she should read 84/2 = 42 pages.\n#### 42", True),
    ("624", "He writes each friend 3*2=6 pages a week\nSo he writes 6*2=12 pages every week\nThat means he writes 12*52=624 pages a year\n#### 624", True),
    ("35", "There are 80/100 * 10 = 8 more purple flowers than yellow flowers.\nSo in Mark's garden, there are 10 + 8 = 18 purple flowers.\n#### 28", False),
    ("48", "He eats 2 large pizzas that have 16 slices each so that's 2*16 = 32 slices\nHe also eats 2 small pizzas with 8 slices each so 2*8 = 16 slices\nThe answer is 48.", True),
    ("16", "Alexis spent 41+4+5+18+... on everything else, so she paid $16 for the shoes. The answer is $16.", True),
    ("1,000", "The total is 1000 dollars.", True),
    ("18", "She sells 16 - 3 - 4 = 9 duck eggs a day. She makes 9 * 2 = $18 every day at the farmer's market. The answer is $18.", True),
    ("3", "It takes 2/2=1 bolt of white fiber. So the total amount of fabric is 2+1=3 bolts of fabric. The answer is 3.", True),
    ("70000", "The cost of the house and repairs came out to 80,000+50,000=$130,000. He increased the value of the house by 80,000*1.5=120,000. So the new value of the house is 120,000+80,000=$200,000. So he made a profit of 200,000-130,000=$70,000. The answer is 70,000.", True),
    ("540", "He sprints 3*3=9 times. So he runs 9*60=540 meters. The answer is 640.", False),
]


def grader_tests(checkout: Path | None) -> list[dict]:
    out = math_verify_cases(checkout) if checkout else []
    for gold, pred, eq, test in MATH_EQUIV:
        if test in MATH_SKIP:
            continue
        out.append({"category": "grader_tests", "verifier": "math", "kind": "answer", "gold": gold, "response": pred,
                    "equal": eq, "source": f"{MATH_SRC}::{test}"})
    for gold, resp, eq in LM_EVAL:
        out.append({"category": "grader_tests", "verifier": "gsm8k", "kind": "response", "gold": gold, "response": resp,
                    "equal": eq, "source": LM_EVAL_SRC})
    return out


# --- answer keys with realistic variants -----------------------------------------

def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _rewrite_latex(g: str, i: int) -> str:
    """An equal rewriting of a MATH answer, the way models write it differently."""
    s = g
    if "\\frac" in s and i % 3 == 0:
        s = s.replace("\\frac", "\\dfrac")
    elif "\\left" in s:
        s = s.replace("\\left", "").replace("\\right", "")
    elif "," in s and "{,}" not in s:
        s = s.replace(", ", ",").replace(",", ", ")
    elif "^\\circ" in s:
        s = s.replace("^\\circ", "^{\\circ}")
    else:
        s = " ".join(s.split()) if i % 2 else s.replace(" ", "")
    return s


def _perturb(g: str) -> str | None:
    """An unequal answer: one digit changed (the first digit that is not inside a base subscript)."""
    for k, c in enumerate(g):
        if c.isdigit() and (k == 0 or g[k - 1] != "_"):
            return g[:k] + str((int(c) + 1) % 10 if c != "0" else 7) + g[k + 1 :]
    return None


MATH_TEMPLATES = [
    "We simplify step by step.\n\nTherefore, the final answer is $\\boxed{{{a}}}$.",
    "Putting everything together gives\n\\[\n{a}\n\\]\nso the answer is $\\boxed{{{a}}}$. I hope it is correct.",
    "After simplifying we get the result.\n\nFinal Answer: The final answer is ${a}$. I hope it is correct.",
    "<reasoning>\nCombine the two cases.\n</reasoning>\n<answer>\n{a}\n</answer>",
    "Thus the answer is $\\boxed{{{a}}}$.",
]
GSM8K_TEMPLATES = [
    "Let's compute. {w}\n#### {a}",
    "{w} The answer is {a}.",
    "{w}\nThe answer is: {a}",
    "{w} So the final answer is $\\boxed{{{a}}}$.",
    "<reasoning>\n{w}\n</reasoning>\n<answer>\n{a}\n</answer>",
    "{w}\n\n**Answer:** {a}",
]


def answer_keys(seed: int = 20261129) -> list[dict]:
    rng = random.Random(seed)
    out = []
    math500 = _read_jsonl(DATA / "math500" / "test.jsonl")
    for i, row in enumerate(rng.sample(math500, 40)):
        g = row["answer"]
        src = f"openai/prm800k MATH-500 {row['unique_id']} (answer key; response written for this set)"
        eq_a = _rewrite_latex(g, i)
        out.append({"category": "answer_keys", "verifier": "math", "kind": "response", "gold": g,
                    "response": MATH_TEMPLATES[i % len(MATH_TEMPLATES)].format(a=eq_a), "equal": True, "source": src})
        bad = _perturb(g)
        if bad is not None and bad != g:
            out.append({"category": "answer_keys", "verifier": "math", "kind": "response", "gold": g,
                        "response": MATH_TEMPLATES[(i + 2) % len(MATH_TEMPLATES)].format(a=bad), "equal": False,
                        "source": src, "note": "one digit of the key changed"})
    gsm = _read_jsonl(DATA / "gsm8k" / "test.jsonl")
    for i, k in enumerate(rng.sample(range(len(gsm)), 30)):
        work, _, gold = gsm[k]["answer"].rpartition("####")
        gold = gold.strip().replace(",", "")
        work = re.sub(r"<<[^>]*>>", "", work).strip().replace("\n", " ")
        n = int(gold)
        eq_forms = [f"{n:,}", f"${n}", f"{n}.00", f"{n}", f"\\${n:,}.00", f"{n} dollars"]
        src = f"openai/grade-school-math test.jsonl row {k} (answer key; response written for this set)"
        out.append({"category": "answer_keys", "verifier": "gsm8k", "kind": "response", "gold": gold,
                    "response": GSM8K_TEMPLATES[i % len(GSM8K_TEMPLATES)].format(w=work, a=eq_forms[i % len(eq_forms)]),
                    "equal": True, "source": src})
        wrong = [n + 1, n * 10, n - 2 if n > 2 else n + 3, -n if n else 4][i % 4]
        out.append({"category": "answer_keys", "verifier": "gsm8k", "kind": "response", "gold": gold,
                    "response": GSM8K_TEMPLATES[(i + 3) % len(GSM8K_TEMPLATES)].format(w=work, a=wrong),
                    "equal": False, "source": src, "note": "a wrong number"})
    aime = _read_jsonl(DATA / "aime" / "aime_2024.jsonl") + _read_jsonl(DATA / "aime" / "aime_2025.jsonl")
    for i, row in enumerate(rng.sample(aime, 10)):
        n = int(row["answer"])
        src = f"eth-sri/matharena AIME {row['id']} (answer key; response written for this set)"
        tmpl = ["The answer is {a}.", "Therefore the requested remainder is $\\boxed{{{a}}}$.", "So $m+n = {a}$.\n\n#### {a}"]
        out.append({"category": "answer_keys", "verifier": "aime", "kind": "response", "gold": str(row["answer"]),
                    "response": tmpl[i % 3].format(a=f"{n:03d}" if i % 2 else str(n)), "equal": True, "source": src})
        out.append({"category": "answer_keys", "verifier": "aime", "kind": "response", "gold": str(row["answer"]),
                    "response": tmpl[(i + 1) % 3].format(a=(n + 100) % 1000), "equal": False, "source": src,
                    "note": "a wrong integer"})
    return out


# --- whole responses -----------------------------------------------------------------------

WHOLE = [
    # (verifier, gold, response, equal)
    ("gsm8k", "228", "Each box holds 12 cookies and there are 19 boxes, so 12 * 19 = 228 cookies.\n#### 228", True),
    ("gsm8k", "228", "Each box holds 12 cookies and there are 18 boxes, so 12 * 18 = 216 cookies.\n#### 216", False),
    ("gsm8k", "10", "She earns $0.2 per minute and worked 50 minutes, so 0.2 x 50 = 10.\nThe answer is: 10.00", True),
    ("gsm8k", "10", "She earns $0.2 per minute and worked 55 minutes.\nThe answer is: 11.00", False),
    ("gsm8k", "18", "Janet sells 16 - 3 - 4 = 9 eggs. 9 * $2 = $18.\n#### 18", True),
    ("gsm8k", "18", "Janet has 16 eggs, eats 3 and bakes with 4, leaving 9. She earns 9 * 2 = 18 dollars per day.", True),
    ("gsm8k", "18", "Janet has 16 eggs, eats 3 and bakes with 4, leaving 9. She earns 9 * 2 = 18 dollars per day, and 18 * 7 = 126 dollars per week.", False),
    ("gsm8k", "64", "First, 8 * 8 = 64.\n\n**Answer:** 64 square feet", True),
    ("gsm8k", "-50", "The temperature changed by 20 - 70 = -50 degrees.\n\n**Answer:** $-50$", True),
    ("gsm8k", "50", "The temperature changed by 20 - 70 = -50 degrees.\n\n**Answer:** $-50$", False),
    ("gsm8k", "13535", "Adding the three amounts gives 13535.\nAnswer: 13535", True),
    ("gsm8k", "1500000", "The company earned 1.5 million dollars last year, so the answer is $1.5 million.", True),
    ("gsm8k", "1.5", "The company earned 1.5 million dollars last year, so the answer is $1.5 million.", False),
    ("gsm8k", "20", "The discount is 20% of the price.\nThe answer is 20%.", True),
    ("gsm8k", "35", "Step 1: 5 * 7 = 35.\nStep 2: 35 + 0 = 35.\nI think the answer is 35 apples. Let me know if you need anything else!", True),
    ("gsm8k", "7", "<reasoning>\n3 + 4 = 7\n</reasoning>\n<answer>\n</answer>\nThe answer is 7.", False),
    ("math", "350", "The perimeter is $2(100 + 75) = 350$.\nFinal Answer: The final answer is $350$. I hope it is correct.", True),
    ("math", "350", "The perimeter is $2(100 + 85) = 370$.\nFinal Answer: The final answer is $370$. I hope it is correct.", False),
    ("math", "4", "Since $2 + 2 = 4$, the answer is 4.", True),
    ("math", "-2, 1", "Testing the divisors of 2, the integers are $\\boxed{-2}$ and $\\boxed{1}$.", True),
    ("math", "-2, 1", "Testing the divisors of 2, the integers are $\\boxed{-2}$ and $\\boxed{2}$.", False),
    ("math", "1", "At first I got $\\boxed{2}$, but checking again the value is $\\boxed{1}$.", True),
    ("math", "[5, \\infty)", "Solving $2x - 3 \\geq 7$ gives $2x \\geq 10$.\nTherefore $x \\geq 5$ is the solution.", True),
    ("math", "[5, \\infty)", "Solving $2x - 3 \\geq 7$ gives $2x \\geq 10$.\nTherefore $x > 5$ is the solution.", False),
    ("math", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
     "Multiplying the two matrices entry by entry, the product is: $\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$", True),
    ("math", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
     "Multiplying the two matrices entry by entry, the product is: $\\begin{pmatrix} 1 & 2 \\\\ 4 & 3 \\end{pmatrix}$", False),
    ("math", "9", "Answer \\( 9 \\)", True),
    ("math", "9", "Answer $$ 9 $$", True),
    ("math", "9", "Answer $$ 8 $$", False),
    ("math", "\\frac{\\pi}{2}", "The angle is a right angle, so $\\theta = \\boxed{\\frac\\pi2}$.", True),
    ("math", "\\frac{\\pi}{3}", "The angle is a right angle, so $\\theta = \\boxed{\\frac\\pi2}$.", False),
    ("math", "2\\sqrt{2}", "The diagonal of the unit square doubled is $\\boxed{2\\sqrt2}$.", True),
    ("math", "(6,31,-1)", "Solving the system, we find $(p,q,r) = (6, 31, -1)$.", True),
    ("math", "(6,31,-1)", "Solving the system, we find $(p,q,r) = (6, 31, 1)$.", False),
    ("math", "\\frac{1}{7}", "Long division gives $1 \\div 7 = 0.142857142857\\ldots$, so the answer is 0.142857142857.", True),
    ("math", "\\frac{1}{3}", "Dividing, we get approximately 0.33, so the answer is 0.33.", False),
    ("math", "\\frac{14}{3}", "Adding, $2 + \\frac{5}{3} + 1 = \\frac{14}{3}$.", True),
    ("math", "8", "We have $5 + 3 = 8$.", True),
    ("math", "9", "We have $5 + 3 = 8$.", False),
    ("math", "x^2+2x+1", "Expanding, $(x+1)^2 = x^2 + 2x + 1$. The answer is $x^2 + 2x + 1$.", True),
    ("math", "x^2+2x+1", "Expanding, $(x+1)^2 = x^2 + 2x - 1$. The answer is $x^2 + 2x - 1$.", False),
    ("math", "10\\%", "The rate went from 50 to 55, an increase of $\\frac{5}{50} = 0.1$. The answer is 0.1.", True),
    ("math", "\\text{Evelyn}", "Evelyn covered more distance in less time, so the answer is Evelyn.", True),
    ("math", "\\text{Evelyn}", "Carla covered the most distance, so the answer is Carla.", False),
    ("math", "25", "The area is $5 \\times 5 = 25$ m².\nThe answer is 25 m².", True),
    ("math", "3", "I'm not sure how to solve this problem.", False),
    ("math", "12", "The total is $\\boxed{12}$.<|im_end|>", True),
    ("aime", "73", "The sum of the numerator and denominator is $m + n = 073$.\n\nThe answer is 073.", True),
    ("aime", "73", "The sum of the numerator and denominator is $m + n = 037$.\n\nThe answer is 037.", False),
    ("aime", "204", "Counting all cases gives 204 minutes.\n\n#### 204", True),
]


def whole_responses() -> list[dict]:
    return [{"category": "whole_responses", "verifier": v, "kind": "response", "gold": g, "response": r, "equal": e,
             "source": OWN} for v, g, r, e in WHOLE]


MULTI = [
    ("gsm8k", "6", "小明有 2 个苹果，又买了 4 个，所以一共 2 + 4 = 6 个。答案是 6。", True),
    ("gsm8k", "6", "小明有 2 个苹果，又买了 5 个，所以一共 2 + 5 = 7 个。答案是 7。", False),
    ("gsm8k", "6", "计算过程如下：2 + 4 = 6。\n最终答案：6", True),
    ("gsm8k", "15", "3 × 5 = 15 なので、答えは 15 です。", True),
    ("gsm8k", "15", "3 × 6 = 18 なので、答えは 18 です。", False),
    ("gsm8k", "12", "Elle a 4 paquets de 3 billes, donc 4 × 3 = 12. La réponse est 12.", True),
    ("gsm8k", "12", "Elle a 4 paquets de 4 billes, donc 4 × 4 = 16. La réponse est 16.", False),
    ("gsm8k", "30", "Tiene 5 cajas con 6 lápices cada una: 5 × 6 = 30. La respuesta es 30.", True),
    ("gsm8k", "30", "Tiene 5 cajas con 7 lápices cada una: 5 × 7 = 35. La respuesta es 35.", False),
    ("gsm8k", "9", "Ele tinha 12 e deu 3, então 12 - 3 = 9. A resposta é 9.", True),
    ("gsm8k", "24", "Sie kauft 3 Packungen mit je 8 Eiern: 3 · 8 = 24. Die Antwort ist 24.", True),
    ("gsm8k", "24", "Sie kauft 3 Packungen mit je 9 Eiern: 3 · 9 = 27.\nAntwort: 27", False),
    ("gsm8k", "42", "Всего 6 рядов по 7 стульев: 6 · 7 = 42.\nОтвет: 42", True),
    ("gsm8k", "42", "Всего 6 рядов по 8 стульев: 6 · 8 = 48.\nОтвет: 48", False),
    ("gsm8k", "7", "राम के पास 10 आम थे, उसने 3 दिए: 10 - 3 = 7. अतः उत्तर है 7", True),
    ("gsm8k", "7", "राम के पास 10 आम थे, उसने 2 दिए: 10 - 2 = 8.\nउत्तर: 8", False),
    ("math", "\\frac{1}{2}", "概率为 $\\frac{3}{6}$，化简后答案是 $\\frac{1}{2}$。", True),
    ("math", "\\frac{1}{2}", "La probabilité est $\\frac{2}{6}$, donc la réponse finale est $\\frac{1}{3}$.", False),
]


def multilingual() -> list[dict]:
    return [{"category": "multilingual", "verifier": v, "kind": "response", "gold": g, "response": r, "equal": e,
             "source": OWN} for v, g, r, e in MULTI]


EQUIV = [
    # percent
    ("math", "0.1", "The answer is 10%.", True, "percent: a percentage equals its fraction"),
    ("math", "10\\%", "The answer is 0.1.", True, "percent: a fraction equals the percentage"),
    ("gsm8k", "10", "The answer is 10%.", True, "percent: GSM8K writes the percentage without its sign"),
    ("math", "0.1", "The answer is 0.1%.", False, "percent: 0.1% is not 0.1"),
    ("gsm8k", "10", "The answer is 1000%.", False, "percent: 1000% is not the count 10"),
    ("math", "10", "The answer is 0.1.", False, "percent: without a sign, 0.1 is not 10"),
    ("math", "0.5", "The answer is 50.", False, "percent: without a sign, 50 is not 0.5"),
    # multipliers
    ("gsm8k", "1500000", "The answer is 1.5 million.", True, "multiplier: million"),
    ("gsm8k", "2000", "So the answer is 2 thousand.", True, "multiplier: thousand"),
    ("math", "1.5 \\text{ million}", "The answer is 1500000.", True, "multiplier: gold written with the word"),
    ("gsm8k", "1.5", "The answer is 1.5 million.", False, "multiplier: 1.5 is not 1.5 million"),
    ("gsm8k", "1500", "The answer is 1.5 million.", False, "multiplier: million is not thousand"),
    ("gsm8k", "3000000000", "The answer is 3 million.", False, "multiplier: million is not billion"),
    # named tuples
    ("math", "(6,31,-1)", "\\boxed{(p,q,r) = (6, 31, -1)}", True, "named tuple"),
    ("math", "(6,31,-1)", "\\boxed{(p,q,r) = (6, -1, 31)}", False, "named tuple: order matters"),
    ("math", "(1,2)", "\\boxed{(a,b,c) = (1, 2, 3)}", False, "named tuple: three values are not two"),
    # shorthand TeX
    ("math", "\\frac{\\pi}{2}", "\\boxed{\\frac\\pi2}", True, "shorthand TeX: \\frac\\pi2"),
    ("math", "\\sqrt{2}", "\\boxed{\\sqrt2}", True, "shorthand TeX: \\sqrt2"),
    ("math", "\\frac{1}{2}", "\\boxed{\\frac12}", True, "shorthand TeX: \\frac12"),
    ("math", "\\frac{1}{12}", "\\boxed{\\frac12}", False, "shorthand TeX: \\frac12 is 1/2, not 1/12"),
    ("math", "\\sqrt{23}", "\\boxed{\\sqrt23}", False, "shorthand TeX: \\sqrt23 is 3\\sqrt2"),
    ("math", "\\frac{\\pi}{2}", "\\boxed{\\frac2\\pi}", False, "shorthand TeX: argument order"),
    # glued units and currency
    ("gsm8k", "1000.99", "The total is 1,000.99€.", True, "glued currency after the number"),
    ("gsm8k", "1000.99", "The total is $1,000.99.", True, "currency before the number"),
    ("math", "25", "\\boxed{25 m²}", True, "glued unit with a superscript"),
    ("math", "12", "\\boxed{12cm}", True, "glued unit"),
    ("gsm8k", "1000.99", "The total is 1,000.90€.", False, "glued currency: a different amount"),
    ("math", "25", "\\boxed{25x}", False, "a variable is not a unit"),
    ("math", "5", "\\boxed{5y}", False, "a letter glued to a number is a variable, not a unit"),
    # relations
    ("math", "x \\geq 5", "\\boxed{x >= 5}", True, "relation: >= is \\geq"),
    ("math", "x \\ge 5", "\\boxed{x \\geqslant 5}", True, "relation: \\geqslant is \\geq"),
    ("math", "x > 5", "\\boxed{x \\gt 5}", True, "relation: \\gt is >"),
    ("math", "x \\leq -2", "\\boxed{x <= -2}", True, "relation: <= is \\leq"),
    ("math", "x \\geq 5", "\\boxed{x > 5}", False, "relation: > is not \\geq"),
    ("math", "x \\geq 5", "\\boxed{x \\leq 5}", False, "relation: direction matters"),
    # decimals of fractions
    ("math", "\\frac{1}{7}", "\\boxed{0.142857}", True, "decimal of a fraction: six places, truncated"),
    ("math", "\\frac{2}{3}", "\\boxed{0.666667}", True, "decimal of a fraction: six places, rounded"),
    ("math", "\\frac{1}{3}", "\\boxed{0.3333333333}", True, "decimal of a fraction: ten places"),
    ("math", "\\frac{1}{3}", "\\boxed{0.333}", False, "decimal of a fraction: three places are loose"),
    ("math", "\\frac{1}{3}", "\\boxed{0.33}", False, "decimal of a fraction: two places are loose"),
    ("math", "\\frac{2}{3}", "\\boxed{0.666668}", False, "decimal of a fraction: neither rounded nor cut"),
    ("math", "\\frac{1}{4}", "\\boxed{0.2500001}", False, "decimal of a fraction: a terminating fraction compares exactly"),
    ("math", "\\frac{1}{997}", "\\boxed{0.001003}", False, "decimal of a fraction: too few places for this denominator"),
]


def equivalences() -> list[dict]:
    return [{"category": "equivalences", "verifier": v, "kind": "response", "gold": g, "response": r, "equal": e,
             "source": OWN, "note": n} for v, g, r, e, n in EQUIV]


MCQ = [
    ("C", "Comparing the options, so the answer is (C).", True, None),
    ("C", "Comparing the options, so the answer is (B).", False, None),
    ("C", "After checking each choice, the correct option is $\\text{(C)}$.\n\nThe answer is $\\boxed{\\text{(C)}}$.", True, None),
    ("D", "The answer is D.", True, None),
    ("D", "The answer is A.", False, None),
    ("B", "Only option B satisfies both conditions.", True, None),
    ("B", "Only option C satisfies both conditions.", False, None),
    ("A", "Answer: A. 42", True, None),
    ("E", "Checking every choice, (E) is the only one that works.", True, None),
    ("E", "Checking every choice, (D) is the only one that works.", False, None),
    ("G", "There are ten options; the answer is G.", True, None),
    ("B", "The two roots multiply to 5, so the answer is 5.", True, ["3", "5", "7", "9"]),
    ("B", "The two roots multiply to 7, so the answer is 7.", False, ["3", "5", "7", "9"]),
    ("1", "The capital of France is Paris. The answer is Paris.", True, ["London", "Paris", "Rome", "Berlin"]),
    ("1", "The capital of France is Rome. The answer is Rome.", False, ["London", "Paris", "Rome", "Berlin"]),
    ("C", "<reasoning>\nOnly one option fits.\n</reasoning>\n<answer>\nC\n</answer>", True, None),
    ("C", "<reasoning>\nOnly one option fits.\n</reasoning>\n<answer>\n(A)\n</answer>", False, None),
    ("A", "A careful look shows the answer is not obvious.", False, None),
]


def mcq() -> list[dict]:
    out = []
    for g, r, e, ch in MCQ:
        case = {"category": "mcq", "verifier": "mcq", "kind": "response", "gold": g, "response": r, "equal": e, "source": OWN}
        if ch is not None:
            case["choices"] = ch
        out.append(case)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--math-verify", type=Path, default=None, help="a git checkout of huggingface/Math-Verify")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    cases = grader_tests(args.math_verify) + answer_keys() + whole_responses() + multilingual() + equivalences() + mcq()
    with args.out.open("w") as f:
        for i, c in enumerate(cases):
            f.write(json.dumps({"id": f"{c['category']}/{i}", **c}, ensure_ascii=False) + "\n")
    unequal = sum(not c["equal"] for c in cases)
    print(f"wrote {len(cases)} cases ({unequal} unequal, {unequal / len(cases):.0%}) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
