"""Throughput, measured side by side in one run: the model's ceiling, the real worker path end to
end, and the tutorial's one-image-at-a-time loop; plus memory and training-input speed.

    .venv/bin/python -m benchmarks.throughput [--images N] [--quick] [--keep]
        [--photos FOLDER [FOLDER ...]]

Each of (a) and (b) is measured for each engine of --engines (HAPPYSAD_ENGINE values, default
tensorflow,auto), with labels and speed compared to the first's. Stages (benchmarks.throughput.
stages): decode, face search, graph (tensorflow, openvino, auto) and database write in ms an
image, and the physical limit: the model's multiply-adds at this CPU's peak float32 rate,
measured in the same run; every rate's ratio to it.
(a) ceiling: the engine (and TensorFlow beside it) called on in-memory uint8
batches of 16 (the worker's chunk) and of 64, the faster counting, in as many processes and
threads as the workers get, and in one process on every core (the issue's "model called
directly under tf.function"), each taken just before and just after every run.
(b) end to end: a job of N JPEGs from its creation by `happysad submit` (run as a subprocess)
to its last row written, through real `celery` workers, on the embedded default (file queue +
SQLite) and on Redis + PostgreSQL; also timed from the command's start, which adds the
interpreter's start-up. (c) the tutorial's loop: cv2.imread, tf.image.resize, `model.predict`
on one image. For 256x256 and 1024x768 JPEGs, with one and two worker processes.
Decode cost: CPU ms per image of the worker's read-and-decode on one thread, and the bound it
puts on (b)/(a) when decoding and inference share the cores.
Memory: peak RSS per worker process; each worker's RSS at 25/50/75/100% of the job (flat: no
growth per batch); peak RSS of `happysad submit` for sources of 1,000, 100,000 and 1,000,000
images (--quick: up to 100,000), with no worker running (flat: the listing and the sending
are streamed).
Training input: the tutorial's image_dataset_from_directory against the project's pipeline
(parallel decode into memory, then tf.data shuffle, batch and prefetch), same data and model,
images/s per epoch.

Everything runs under a temporary HAPPYSAD_HOME (your HAPPYSAD_ settings are ignored), on
generated JPEGs (drawn faces), PostgreSQL database `happysad_bench` and Redis db 14. Prints JSON.
--photos runs on real photos instead: every image under the folders, each copied once into the
work folder and hard-linked under distinct names, in turn, up to --images a job (the JSON's
"photos" says how many there were); the model trains on the first folder, and the stages, the
decode cost and the one-image loop time the same photos.
The full run takes about 13 minutes on 2 cores, --quick about 7.
"""
