"""Where the answer is in a model's response: one ordered policy for every verifier.

A verifier compares an *answer* with the gold; this module finds that answer
in a whole response, the way a careful human grader would, and says which
rule found it. The rules, tried in this order (the first that finds something
decides):

1. ``answer_tag`` -- the format's own slot, the last complete
   ``<answer>…</answer>`` block (a ``\\boxed{}`` inside it wins over its raw
   text). When the slot is present it decides alone: an empty slot is "no
   answer", nothing else in the response is read.
2. ``boxed`` -- the last ``\\boxed{…}`` / ``\\fbox{…}``. Boxes that follow one
   another in the same sentence ("the integers are $\\boxed{-2}$ and
   $\\boxed{1}$") are kept together as :attr:`Found.parts`, and become one
   collection ``-2, 1`` when the gold is a collection (:meth:`Found.answer_for`).
3. ``final_phrase`` -- the last explicit final-answer phrase: "The answer is",
   "Final Answer:", "**Answer:**", "Answer \\( 9 \\)" in English, and the same
   phrase in Chinese (答案是), Japanese (答えは), French (la réponse est),
   Spanish (la respuesta es), Portuguese (a resposta é), German (die Antwort
   ist/lautet), Russian (Ответ:) and Hindi (उत्तर). The answer is the math
   after the phrase when there is some (``The final answer is $350$. I hope it
   is correct.`` gives ``350``), else the rest of its sentence.
4. ``gsm8k_hashes`` -- GSM8K's own answer line, ``#### 18``.
5. ``last_math`` -- the last math span (``$…$``, ``$$…$$``, ``\\(…\\)``,
   ``\\[…\\]``) of the response's final sentence ("Therefore $x \\geq 5$ is the
   solution.").
6. ``last_number`` -- the last number of the final part of the response
   (its last 300 characters).

``mode="strict"`` applies rules 1 and 2 only: the answer the format asks for,
and nothing a grader would have to hunt for. ``mode="flexible"`` (the default
of :meth:`grpo_core.Verifier.check`) applies all six.

For answers found in prose (``final_phrase``, ``last_math``) a chain such as
``5 + 3 = 8`` answers a gold that is a value with its last right-hand side
(the MATH/Minerva graders' rule), see :meth:`Found.answer_for`.

Every scan here is linear in the response's length (``str.rfind``, a brace
counter, regexes without nested quantifiers) and the prose rules read only
the response's last :data:`TAIL_CHARS` characters, so a huge or adversarial
response costs no more than a long one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grpo_core.kit.extraction import last_tag_block

#: every rule, in the order it is tried
RULES = ("answer_tag", "boxed", "final_phrase", "gsm8k_hashes", "last_math", "last_number")
#: the rules of ``mode="strict"``: the format's slot only
STRICT_RULES = ("answer_tag", "boxed")
MODES = ("flexible", "strict")
#: prose rules read this many characters at the end of a response
TAIL_CHARS = 4000
#: the last number is looked for in this many characters at the end
LAST_NUMBER_CHARS = 300
#: longest answer a prose rule returns (a longer capture is not an answer)
MAX_PROSE_ANSWER = 400


@dataclass(frozen=True)
class Found:
    """An answer found in a response, and the rule that found it."""

    answer: str
    rule: str
    #: several boxes of one sentence, in order (empty when there was one box or none)
    parts: tuple[str, ...] = field(default=())

    def answer_for(self, gold: object) -> str:
        """The answer adapted to what the gold looks like.

        * several boxes of one sentence are one collection ``a, b`` when the
          gold is a collection (a comma outside a number's thousands groups);
        * an answer found in prose that is a chain ``… = v`` is ``v`` when the
          gold is a value (has no ``=``, ``<``, ``>``, ``\\le``/``\\ge``).
        """
        gold_s = "" if gold is None else str(gold)
        if len(self.parts) > 1 and is_collection(gold_s):
            return ", ".join(self.parts)
        if self.rule in ("final_phrase", "last_math") and "=" in self.answer and not is_relation(gold_s):
            rhs = _last_rhs(self.answer)
            if rhs:
                return rhs
        return self.answer


def check_mode(mode: str) -> str:
    """``mode`` itself, or a ValueError naming the valid modes."""
    if mode not in MODES:
        raise ValueError(f"unknown answer mode {mode!r}; choose one of: {', '.join(MODES)}")
    return mode


def find_answer(text: str, *, mode: str = "flexible") -> Found | None:
    """The answer in ``text`` by the ordered policy of this module, or None."""
    check_mode(mode)
    text = "" if text is None else str(text)
    block = last_tag_block(text)
    if block is not None:
        inner, _ = _boxes(block)
        ans = inner[-1] if inner else block.strip()
        return Found(ans, "answer_tag") if ans else None
    boxes, box_end = _boxes(text)
    # chat-template tokens end a sentence (replaced by as many characters: positions stay)
    tail = _SPECIAL_TOKEN_RE.sub(lambda m: "\n".ljust(len(m.group(0))), text[-TAIL_CHARS:])
    if boxes:
        if mode == "flexible":
            # an explicit final-answer phrase written after the last box states the final answer
            phrase = _last_phrase(tail)
            if phrase is not None and len(text) - len(text[-TAIL_CHARS:]) + phrase.start() > box_end:
                ans = _after_phrase(tail[phrase.end() :])
                if ans:
                    return Found(ans, "final_phrase")
        return Found(boxes[-1], "boxed", tuple(boxes) if len(boxes) > 1 else ())
    if mode == "strict":
        return None
    for rule, finder in _PROSE_RULES:
        ans = finder(tail)
        if ans:
            return Found(ans, rule)
    return None


# --- boxes -------------------------------------------------------------------

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
#: what may stand between two boxes of one collection ("$ and $", ", ", " or ")
_BOX_JOIN_RE = re.compile(r"^(?:[\s$,;&]|\band\b|\bor\b|\\q?quad\b|\\text\{\s*(?:and|or|,)\s*\}|\\\]|\\\[)*$")
_BOX_JOIN_MAX = 60


def _closing_braces(text: str) -> dict[int, int]:
    """Index of the ``}`` that closes each ``{`` of ``text`` (unclosed ones absent), in one pass."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for k, c in enumerate(text):
        if c == "{":
            stack.append(k)
        elif c == "}" and stack:
            pairs[stack.pop()] = k
    return pairs


def _box_at(text: str, start: int, closing: dict[int, int]) -> tuple[str, int] | None:
    """The content of the box whose command starts at ``start`` and the index after it."""
    i = start + len("\\boxed") if text.startswith("\\boxed", start) else start + len("\\fbox")
    j = i
    while j < len(text) and text[j] == " ":
        j += 1
    if j < len(text) and text[j] == "{":
        k = closing.get(j, -1)
        if k < 0:
            return None
        return text[j + 1 : k].strip(), k + 1
    m = re.compile(r"[^\s$.,;]+").match(text, j)  # "\boxed 5"
    if j > i and m:
        return m.group(0), m.end()
    return None


def _boxes(text: str) -> tuple[list[str], int]:
    """The last box's content, preceded by the boxes joined to it in one sentence; and where it ends."""
    starts = [m.start() for m in _BOX_RE.finditer(text)]
    if not starts:
        return [], -1
    # walk back from the last box while the text between boxes only joins them
    closing = _closing_braces(text)
    found: list[str] = []
    nxt = None
    last_end = -1
    for s in reversed(starts):
        box = _box_at(text, s, closing)
        if box is None:
            if found:
                break
            continue
        content, end = box
        if last_end < 0:
            last_end = end
        if found and (nxt - end > _BOX_JOIN_MAX or not _BOX_JOIN_RE.match(text[end:nxt])):
            break
        if content:
            found.append(content)
        nxt = s
    found.reverse()
    return found, last_end


# --- final-answer phrases -----------------------------------------------------

_PHRASES = [
    # English (the MATH/Minerva "Final Answer: The final answer is …" and plain prose)
    r"(?:the\s+)?final\s+answer\s*(?:is|:)",
    r"(?:the\s+)?(?:correct\s+|right\s+)?answer\s+(?:is|should\s+be|would\s+be|will\s+be)",
    r"answer\s*:",
    r"answer(?=\s*(?:\$|\\\(|\\\[))",
    # Chinese, Japanese
    r"最终答案[是为:：]",
    r"答案[是为:：]",
    r"答えは",
    r"答え[:：]",
    r"解答[:：]",
    # French, Spanish, Portuguese
    r"la\s+réponse\s+(?:finale\s+)?est",
    r"réponse\s+(?:finale\s*)?:",
    r"la\s+respuesta\s+(?:final\s+|correcta\s+)?es",
    r"respuesta\s+(?:final\s*)?:",
    r"a\s+resposta\s+(?:final\s+|correta\s+)?é",
    r"resposta\s*:",
    # German
    r"die\s+(?:richtige\s+)?antwort\s+(?:ist|lautet)",
    r"antwort\s*:",
    # Russian
    r"ответ\s*(?::|—|-|равен|будет)",
    # Hindi
    r"उत्तर\s*(?:है|:|=|—)",
]
_PHRASE_RE = re.compile("|".join(f"(?:{p})" for p in _PHRASES), re.IGNORECASE)
_MATH_SPAN_RE = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
# a word of prose between two dollar signs: "$5 and $6" is money, not math
_PROSE_WORD_RE = re.compile(r"(?:^|\s)[A-Za-z]{3,}(?=\s|$|[.,;])")


def _math_spans(text: str) -> list[tuple[re.Match, str]]:
    """Each math span of ``text`` with its content; ``$`` pairs that enclose prose are skipped."""
    out = []
    for m in _MATH_SPAN_RE.finditer(text):
        inner = next(g for g in m.groups() if g is not None)
        if m.group(2) is not None and _PROSE_WORD_RE.search(inner):
            continue
        out.append((m, inner.strip()))
    return out


_LEAD_NOISE_RE = re.compile(r"^[\s:：=—*_]*(?:(?:is|est|es|ist|é|是|为)\b[\s:：]*)?")
# a sentence ends at . ! ? 。 followed by a space or the end (not a decimal point), or at a line end
_SENTENCE_END_RE = re.compile(r"(?<!\d)\.(?=\s|$)|(?<=\d)\.(?=\s|$)|[!?。！？](?=\s|$)|\n|\s+I hope\b", re.IGNORECASE)
_TRAIL_NOISE = " \t*_`'\".,;:!?。，、"


def _clean_prose(ans: str) -> str:
    ans = ans.strip()
    while ans and ans[-1] in _TRAIL_NOISE and not ans.endswith(("\\.", "\\,", "\\;", "\\!")):
        ans = ans[:-1].rstrip()
    while ans and ans[0] in "*_`\"'":
        ans = ans[1:].lstrip()
    return ans


# two plain words in a row: a sentence of prose, not an answer
_PROSE_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}\s+[A-Za-z]{2,}")
# "... is 34", "... are $x = 2$", "... equals 7": what follows the last verb of a prose sentence
_VERB_RE = re.compile(r"\s(?:is|are|was|equals|be|becomes|gives)\s+|=\s*|:\s+", re.IGNORECASE)
# a number or math followed by words of a language without spaces: "15 です", "6 个"
_CJK_TAIL_RE = re.compile(r"^(.*?\d.*?)\s*[\u3040-\u30ff\u4e00-\u9fff].*$", re.DOTALL)
_NUMBER_IN_PROSE_RE = re.compile(r"(?<![\w.])[-−]?\d[\d,]*(?:\.\d+)?(?:/\d+)?%?")


def _answer_in_sentence(sentence: str) -> str | None:
    """The answer stated by one sentence that follows a final-answer phrase."""
    spans = _math_spans(sentence)
    if spans and spans[0][0].start() == 0:  # "$350$. I hope it is correct."
        return spans[0][1] or None
    if _PROSE_RE.search(_MATH_SPAN_RE.sub("\0", sentence)):
        # "The largest $n$ is 34", "Jane started growing Sphere 3 hours ago"
        verb = None
        for v in _VERB_RE.finditer(sentence):
            if not any(m.start() <= v.start() < m.end() for m, _ in spans):
                verb = v
        if verb is not None and verb.end() < len(sentence):
            said = _answer_in_sentence(sentence[verb.end():])
            if said:
                return said
        if spans:
            return spans[-1][1] or None
        numbers = _NUMBER_IN_PROSE_RE.findall(sentence)
        if numbers:
            return numbers[-1].replace("−", "-")
        return None
    if spans:  # "therefore $x = 5$ here"
        return spans[-1][1] or None
    ans = _clean_prose(sentence)
    cjk = _CJK_TAIL_RE.match(ans)
    if cjk:
        ans = cjk.group(1).strip()
    return ans if 0 < len(ans) <= MAX_PROSE_ANSWER else None


def _after_phrase(rest: str) -> str | None:
    """The answer written after a final-answer phrase."""
    rest = _LEAD_NOISE_RE.sub("", rest, count=1)
    spans = _math_spans(rest[: MAX_PROSE_ANSWER * 2])
    if spans and spans[0][0].start() == 0:
        return spans[0][1] or None
    end = _SENTENCE_END_RE.search(rest)
    sentence = rest[: end.start()] if end else rest
    return _answer_in_sentence(sentence)


def _last_phrase(tail: str) -> re.Match | None:
    last = None
    for last in _PHRASE_RE.finditer(tail):
        pass
    return last


def _final_phrase(tail: str) -> str | None:
    last = _last_phrase(tail)
    return None if last is None else _after_phrase(tail[last.end() :])


# --- GSM8K's "#### N" -----------------------------------------------------------


def _gsm8k_hashes(tail: str) -> str | None:
    k = tail.rfind("####")
    if k < 0:
        return None
    line = tail[k + 4 :].lstrip("#").strip().split("\n", 1)[0]
    ans = _clean_prose(line)
    return ans if 0 < len(ans) <= MAX_PROSE_ANSWER else None


# --- the final sentence's math ----------------------------------------------------


def _final_sentence_start(tail: str, spans: list[tuple[int, int]]) -> int:
    """Where the last sentence of ``tail`` begins (sentence ends inside math do not count)."""
    body_end = len(tail.rstrip(_TRAIL_NOISE + "\n"))
    start = 0
    for m in _SENTENCE_END_RE.finditer(tail, 0, body_end):
        if any(a <= m.start() < b for a, b in spans):
            continue
        start = m.end()
    return start


def final_sentence(text: str) -> str:
    """The last sentence of ``text`` (a sentence end inside math does not count)."""
    spans = [(m.start(), m.end()) for m, _ in _math_spans(text)]
    return text[_final_sentence_start(text, spans):]


def _last_math(tail: str) -> str | None:
    matches = _math_spans(tail)
    if not matches:
        return None
    start = _final_sentence_start(tail, [(m.start(), m.end()) for m, _ in matches])
    for m, inner in reversed(matches):
        if m.end() <= start:
            return None
        if inner and len(inner) <= MAX_PROSE_ANSWER:
            return inner
    return None


# --- the last number ---------------------------------------------------------------

_NUMBER_RE = re.compile(r"(?<![\w.])[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+|\s?%)?")
# chat-template tokens a model may leave at the end ("<|im_end|>", "<|im_start|>user", "</s>")
_SPECIAL_TOKEN_RE = re.compile(r"<\|[A-Za-z_]{2,24}\|>(?:user|assistant|system)?|</s>")


def _last_number(tail: str) -> str | None:
    last = None
    for last in _NUMBER_RE.finditer(tail[-LAST_NUMBER_CHARS:]):
        pass
    return None if last is None else last.group(0).replace("−", "-").replace(" ", "")


_PROSE_RULES = (
    ("final_phrase", _final_phrase),
    ("gsm8k_hashes", _gsm8k_hashes),
    ("last_math", _last_math),
    ("last_number", _last_number),
)


# --- what the gold looks like -------------------------------------------------------

_THOUSANDS_COMMA_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_RELATION_RE = re.compile(r"=|<|>|\\[lg]eq?(?![a-zA-Z])|\\[lg]t(?![a-zA-Z])|\\neq?(?![a-zA-Z])|[≤≥≠]")


def is_collection(gold: str) -> bool:
    """True when the gold lists several values (a comma that is not a thousands separator)."""
    return "," in _THOUSANDS_COMMA_RE.sub("", gold)


def is_relation(gold: str) -> bool:
    """True when the gold is an equation or inequality rather than a value."""
    return bool(_RELATION_RE.search(gold))


def _last_rhs(ans: str) -> str:
    """``5 + 3 = 8`` -> ``8``; ``x = 5`` -> ``5`` (text after the last ``=`` outside brackets)."""
    depth = 0
    cut = -1
    for i, c in enumerate(ans):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "=" and depth == 0:
            cut = i
    return ans[cut + 1 :].strip() if cut >= 0 else ans
