"""Model-selection bench: run your own agent tasks on each candidate model and say which should serve whom.

suite (YAML → validated tasks) → runner (each model alone, through its provider) → score (per model ×
agent) → recommend (chains, config diff); results go to the routing log as they finish.
"""
