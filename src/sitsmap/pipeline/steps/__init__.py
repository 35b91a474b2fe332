"""The chain's steps: glue between I/O and the numeric kernels, one module per step.

Every step function has the signature ``function(context, **arguments)``,
reads its inputs from the output tree, and writes its outputs atomically.
"""
