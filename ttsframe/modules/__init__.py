"""Shared building blocks: attention, transformer, rotary positions, codebook patterns, sampling,
row packing."""
