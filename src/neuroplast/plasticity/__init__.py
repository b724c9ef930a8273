"""Local learning rules: Hebbian / Oja, STDP, homeostasis."""
