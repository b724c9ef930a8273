"""Model neurons: spiking, dendritic, gated, oscillatory and map neurons (functional core, thin modules)."""
