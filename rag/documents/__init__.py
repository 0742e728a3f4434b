"""Documents: parsing, chunking, the corpus folder, the library (adds, deletes, lock), watching."""
