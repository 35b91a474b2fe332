"""Products after the map: smoothing, regularisation, vectorisation, uncertainty, suggestions.

Numeric kernels on arrays only; the post-processing step streams the final
mosaics through them window by window (see :mod:`sitsmap.postprocessing.windows`).
"""
