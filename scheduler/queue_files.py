"""The embedded queue's transport: kombu's filesystem transport, made safe for a full disk.

kombu writes a message straight into its final file, so a full disk leaves empty or truncated
message files, and a worker that reads one dies ("Unrecoverable error: JSONDecodeError").
Here a message is written under a hidden temporary name and renamed into place once whole, so
no half-written message is ever read; a message file that is not a message anyway (written by
an older version, or damaged) is moved to the `quarantine` folder beside the queue and logged,
and the worker goes on; a write that fails says so in one line (QueueWriteError).
"""

import contextlib
import logging
import os
import uuid
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

from db.errors import Unavailable

logger = logging.getLogger(__name__)


class QueueWriteError(Unavailable):
    """A message that could not be written to the queue folder (a full disk, say). Not one of
    kombu's channel errors on purpose: kombu would close the channel and retry on it."""


class Channel(filesystem.Channel):
    def get_table(self, exchange):
        """The exchange's bindings; a file left empty or truncated by a full disk is removed
        (the next bind writes it again) instead of failing every publish and every worker."""
        try:
            return super().get_table(exchange)
        except ValueError as error:
            self._drop_damaged(exchange, error)
            return []

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        try:
            try:
                return super()._queue_bind(exchange, routing_key, pattern, queue)
            except ValueError as error:
                self._drop_damaged(exchange, error)
                return super()._queue_bind(exchange, routing_key, pattern, queue)
        except ChannelError as error:
            cause = error.__cause__
            raise QueueWriteError(f"cannot write to the queue folder {self.control_folder}: "
                                  f"{getattr(cause, 'strerror', None) or error}") from None

    def _drop_damaged(self, exchange, error: Exception) -> None:
        path = self._exchange_file(exchange)
        logger.error("queue: exchange file %s is damaged (%s): written again", path, error)
        with contextlib.suppress(OSError):
            os.unlink(path)

    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.partial")  # never listed as one
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
                file.flush()
                os.fsync(file.fileno())
            os.rename(partial, final)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise QueueWriteError(f"cannot write to the queue folder "
                                  f"{self.data_folder_out}: {error.strerror or error}") from None

    def _get(self, queue):
        """The oldest whole message of `queue`, taken by renaming it (atomic: one taker)."""
        wanted = f"{queue}.msg"
        for filename in sorted(os.listdir(self.data_folder_in)):
            if filename.partition(".")[2] != wanted:
                continue
            path = os.path.join(self.data_folder_in, filename)
            taken = os.path.join(self.data_folder_in, f".{filename}.taken-{os.getpid()}")
            try:
                os.rename(path, taken)  # another consumer took it first: try the next
            except OSError:
                continue
            try:
                with open(taken, "rb") as file:
                    payload = file.read()
                message = loads(bytes_to_str(payload))
                if not isinstance(message, dict):
                    raise ValueError("not a message object")
            except (OSError, ValueError) as error:  # JSONDecodeError, UnicodeDecodeError
                self._quarantine(taken, filename, error)
                continue
            os.unlink(taken)
            return message
        raise Empty()

    def _quarantine(self, taken: str, filename: str, error: Exception) -> None:
        folder = os.path.join(self.data_folder_in, "quarantine")
        try:
            os.makedirs(folder, exist_ok=True)
            os.rename(taken, os.path.join(folder, filename))
            where = os.path.join(folder, filename)
        except OSError:
            where = taken  # left under its hidden name: never read again
        logger.error("queue: %s is not a readable message (%s): moved aside to %s", filename,
                     error, where)


class Transport(filesystem.Transport):
    Channel = Channel
    global_state = filesystem.Transport.global_state
