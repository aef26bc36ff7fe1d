"""moto's server, answering one request at a time.

moto's DynamoDB TransactWriteItems deep-copies every table it touches (to roll back
on failure) while other request threads write to them: under concurrent transactions
it fails with "dictionary changed size during iteration", and a rolled-back
transaction restores a snapshot that erases writes other threads made meanwhile.
Real DynamoDB does neither. Serialising requests makes moto's transactions atomic,
so the feedback tests' concurrency checks measure our code, not moto's races.
(The name keeps "moto_server" in the command line: xtask finds its own moto by it.)
"""

import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main

_lock = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _one_at_a_time(self, environ, start_response):
    with _lock:
        # moto's responses are complete byte strings, so the whole answer is made
        # while the lock is held.
        return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _one_at_a_time

if __name__ == "__main__":
    sys.exit(main())
