"""Data: the Spoken Wikipedia reader (`swc`), chunker (`chunking`), entity tagger (`entities`), the offline corpus
builder (`corpus`, `tts`) and the `datasets` integration (`dataset`)."""
