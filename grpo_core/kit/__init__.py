"""The author kit: everything a plugin needs from grpo-core, public and stable.

A plugin imports from ``grpo_core`` (``hookimpl``, ``get_verifier``, ...) and from
here, nothing else (a test checks the in-repo plugins). See
docs/plugins/author-kit.md.

* verdicts: :class:`Verdict`, :class:`VerdictStatus`;
* verifiers: :class:`Verifier` (batched, cached, each comparison under a hard time limit),
  :func:`in_worker`;
* finding the answer in a whole response, by one ordered policy: :func:`find_answer`,
  :class:`Found`, :func:`final_sentence`, :data:`ANSWER_RULES`, :data:`MODES`;
* extraction: :func:`completion_text`, :func:`extract_answer`, :func:`last_tag_block`,
  :func:`last_boxed`, :func:`matching_brace`, :data:`MAX_ANSWER_CHARS`;
* the reply format: :class:`XmlReply`, :func:`format_xml`, :func:`chat_prompt`,
  :data:`XML_SYSTEM_PROMPT`;
* datasets: :class:`DatasetAdapter`, :func:`read_jsonl`, :func:`parse_dataset_spec`,
  :func:`content_hash`;
* chat templates: :func:`resolve_template`, :func:`apply_template`, :func:`render_prompt`,
  :func:`opens_think_tag`, :data:`TEMPLATES`, :data:`CHATML`.

Nothing here imports torch, transformers or trl.
"""

from grpo_core.kit.answers import MODES, RULES as ANSWER_RULES, TAIL_CHARS, Found, final_sentence, find_answer
from grpo_core.kit.chat_templates import CHATML, TEMPLATES, apply_template, opens_think_tag, render_prompt, resolve_template
from grpo_core.kit.datasets import DatasetAdapter, content_hash, parse_dataset_spec, read_jsonl
from grpo_core.kit.extraction import MAX_ANSWER_CHARS, completion_text, extract_answer, last_boxed, last_tag_block, matching_brace
from grpo_core.kit.prompts import XML_SYSTEM_PROMPT, chat_prompt, format_xml
from grpo_core.kit.verdict import Verdict, VerdictStatus
from grpo_core.kit.verifier import Verifier
from grpo_core.kit.xmlformat import XmlReply
from grpo_core.runtime.deadline import in_worker

__all__ = [
    "Verdict",
    "VerdictStatus",
    "Verifier",
    "in_worker",
    "find_answer",
    "Found",
    "final_sentence",
    "ANSWER_RULES",
    "MODES",
    "TAIL_CHARS",
    "MAX_ANSWER_CHARS",
    "completion_text",
    "extract_answer",
    "last_boxed",
    "last_tag_block",
    "matching_brace",
    "XmlReply",
    "XML_SYSTEM_PROMPT",
    "chat_prompt",
    "format_xml",
    "DatasetAdapter",
    "read_jsonl",
    "parse_dataset_spec",
    "content_hash",
    "CHATML",
    "TEMPLATES",
    "apply_template",
    "opens_think_tag",
    "render_prompt",
    "resolve_template",
]
