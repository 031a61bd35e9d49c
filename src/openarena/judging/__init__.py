"""Automatic benchmarks with LLM judges: Arena-Hard-Auto (pairwise against a baseline, both
orders), MT-Bench (1-10 single grades with reference answers), judge audits and benchmark quality.

One module per concept:

- :mod:`~openarena.judging.questions`: question sets (Arena-Hard v0.1 / v2.0, MT-Bench, any
  JSONL), from local files or the Hugging Face hub;
- :mod:`~openarena.judging.answers`: answers of registry models (bounded concurrency, retries,
  resumable on-disk log, tokens and cost), and reading answer files;
- :mod:`~openarena.judging.answer_records`: one answer as stored (arena-hard or FastChat record)
  and its style metadata, shared by answers and questions (reference answers);
- :mod:`~openarena.judging.prompts`: judge prompt templates as files (Arena-Hard, MT-Bench);
- :mod:`~openarena.judging.parse`: verdict and rating parsers that never guess;
- :mod:`~openarena.judging.judge`: the judge settings, one call with one retry, provenance, and
  the batch runner shared by pairwise judging and single grading;
- :mod:`~openarena.judging.pairwise`: judging against a baseline in both orders, battles;
- :mod:`~openarena.judging.single`: MT-Bench single-answer grading;
- :mod:`~openarena.judging.report`: leaderboards (Bradley-Terry via the ratings engine, win rate
  vs baseline, bootstrap intervals, style control, categories; MT-Bench averages);
- :mod:`~openarena.judging.audits`: position bias, length bias, self-preference;
- :mod:`~openarena.judging.quality`: separability, agreement, Spearman, Brier (Li et al. 2024);
- :mod:`~openarena.judging.store`: crash-safe JSON-lines logs;
- :mod:`~openarena.judging.taggers`: LLM category taggers (FastChat's labelling prompts), beside
  the rule taggers of :mod:`openarena.data.categories`.

The command line is ``openarena judge answer|run|show|audit|quality``.
"""
