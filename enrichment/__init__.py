"""The enrichment engine: tasks, prompts, token budgets and the providers that answer them.

Nothing here touches Spark; ``transforms/enrich.py`` runs it inside ``mapInPandas``.
"""
