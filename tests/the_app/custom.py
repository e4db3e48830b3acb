# mypy: ignore-errors
"""The two examples of the user guide's "Custom Cache Backends" section, unchanged.

Only the imports the guide leaves out are added; the bodies are the guide's, so
``tests/test_dropin.py`` proves that code written from the guide runs on ours.
"""

import pylibmc

from flask_caching.backends.cache import BaseCache


# fmt: off
#: the_app/custom.py
class RedisCache(BaseCache):
    def __init__(self, servers, default_timeout=500):
        pass

    @classmethod
    def factory(cls, app, args, kwargs):
        args.append(app.config['REDIS_SERVERS'])

        return cls(*args, **kwargs)


#: the_app/custom.py
def pylibmccache(app, config, args, kwargs):
    return pylibmc.Client(servers=config['CACHE_MEMCACHED_SERVERS'],
                          username=config['CACHE_MEMCACHED_USERNAME'],
                          password=config['CACHE_MEMCACHED_PASSWORD'],
                          binary=True)
# fmt: on
