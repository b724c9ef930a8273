"""Networks of model neurons as dynamical systems: coupled-map networks, fixed points, bifurcations, Lyapunov."""
