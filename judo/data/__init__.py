"""Training-data builders for the three JUDO stages and the teacher client they share.

Kept import-free so that `judo.data.teacher` (httpx only) can be used without loading the builders.
"""
