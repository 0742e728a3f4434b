"""The index: analysis and languages, engines, segments, search, support signals, persistence."""
