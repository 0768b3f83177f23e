from flowjit.lazy import lazy_attributes

# (the timeline imports json: a cost only for programs that trace)
__getattr__, __dir__ = lazy_attributes(__name__, {"timeline": "flowjit.client.timeline"})
