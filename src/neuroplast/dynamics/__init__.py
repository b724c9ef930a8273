"""Networks of model neurons as dynamical systems: coupled maps, fixed points, bifurcations, Lyapunov."""
