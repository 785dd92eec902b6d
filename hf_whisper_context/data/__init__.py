"""Data: speech synthesis for the offline corpus, and (later) the Spoken Wikipedia reader, chunker and tagger."""
