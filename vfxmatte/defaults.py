"""Engine defaults shared by the engine and the job schema (kept free of torch, so reading a job
file does not import it)."""

#: Default largest tile edge and least overlap (pixels). Chosen by measurement (starter
#: weights, example-shot hair frames, tiled vs untiled inside the unknown band). Starter v7,
#: which learned to judge whole objects inside wide bands, reads more context than earlier
#: weights: at the old 1280/384 its seams reached max |diff| 0.018-0.04 (2200x1700, 3000x2160;
#: 0.088 against 1408/512 on a 2K benchmark frame), at 1408/512 0.006 / 0.0025. 1408 rather
#: than 1280 keeps a 4K frame at two rows of tiles (1.7x its pixels) and a 2K frame at 1.28x.
#: Cost (results/engine_cpu_v7_tiling.md): 2K 1.05x the time of 1280/384, 4K 1.5-1.75x (its
#: thin-band tiles were skipped more often). Memory per tile bounds the tile size.
DEFAULT_TILE = 1408
DEFAULT_OVERLAP = 512
