import torch

# Tiny models: one thread is much faster than contended intra-op parallelism.
torch.set_num_threads(1)
