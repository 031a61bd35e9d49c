"""Routers trained on preference data, and the router benchmark.

- :mod:`.data`: the training and evaluation sets (RouteLLM's per-prompt correctness files and
  MT-Bench judgments, judge grades such as arena-bench-v1, battle tables with prompts), as one
  :class:`~openarena.routing.data.PromptScores` (prompts x models quality table).
- :mod:`.battles`: arena battles with prompts (clean_battle, the 55k / 100k / 140k preference
  sets, the arena's database) as training data: first-turn prompts, RouteLLM's tiers by arena
  score, strong-vs-weak labels with RouteLLM's tie rules, the multi-model battle.
- :mod:`.embeddings`: prompt embeddings (offline TF-IDF character n-grams + SVD; any
  OpenAI-compatible ``/v1/embeddings`` endpoint).
- :mod:`.routers`: random, length, difficulty, sw_ranking, mf, classifier, p2l.
- :mod:`.evaluate`: PGR curves, APGR, CPT with bootstrap intervals over test prompts.
- :mod:`.train` and :mod:`.persist`: a router trained on a whole data set, saved as one ``.npz``
  (arrays + JSON metadata, loaded with ``allow_pickle=False``).
- :mod:`.server`: the OpenAI-compatible route server (``model: router-NAME-THRESHOLD``). A
  router becomes an arena contestant through a registry entry whose ``base_url`` is the route
  server and whose ``model_id`` is ``router-NAME-THRESHOLD``.

Source: Ong et al. (2024), "RouteLLM: Learning to Route LLMs with Preference Data"
(lm-sys/RouteLLM); Frick et al. (2025), "Prompt-to-Leaderboard" (lmarena/p2l).
"""
