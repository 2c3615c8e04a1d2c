"""What tests share besides fixtures: images, processes, waiting for jobs. Fixtures live in
the conftest.py files and import from here, never the other way round."""
