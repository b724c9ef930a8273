"""Continual learning: scenarios, a small strategy protocol, baselines, HLOP and CLNP."""
