/*
Package bridge connects the events of this node to the same events on other
nodes through RabbitMQ (PROTOCOL.md section 4). A standalone node has no
bridge; a clustered node has one [AMQP] behind the [Bridge] interface.

# Topology

  - One direct exchange (Config.Exchange, default "relay.events"), durable and
    not auto-delete, declared on every channel this package opens, so every
    (re)connect declares it again.
  - Per subscribed event: one server-named (amq.gen-*) queue, exclusive,
    auto-delete, non-durable, consumed with auto-ack and bound with the event
    ID as binding key. Unsubscribe cancels the consumer and deletes the queue.
    A lost channel or connection takes the queues with it (exclusive,
    auto-delete); they are declared again, under new names, when the channel
    comes back.
  - Publish sends the body unchanged with routing key = event ID, content type
    application/msgpack, header x-relay-node = Config.Node, transient delivery
    mode and a per-message expiration (Config.Expiration, default 5000 ms).
  - Deliveries whose x-relay-node is our own node are dropped (Stats.DroppedOwn):
    our own queue receives our own batches, the exchange cannot filter them.

One connection carries two channels: the topology channel (declares, binds,
deletes, and all consumers) and the publish channel.

# Goroutines

An AMQP owns all of its goroutines; Close stops every one of them and waits:

  - run, the topology goroutine: dials with exponential backoff and jitter,
    owns the connection and both channels, watches their NotifyClose, and
    applies Subscribe/Unsubscribe commands in call order. It is the only
    goroutine that talks to the broker about topology.
  - publisher: reads the bounded publish queue (Config.PublishQueue) and
    writes each batch to the publish channel.
  - one reader per consumer: ranges over the consumer's delivery channel and
    calls that subscription's deliver func. It ends when the consumer is
    cancelled or its channel or connection closes.

amqp091-go adds, per connection, a frame reader and a heartbeater, and per
consumer a buffer goroutine between its reader and our reader (with an
unbounded in-memory queue). So each subscribed event costs two goroutines
(about 4 KiB of stack when idle) and one consumer on the broker. The number
of goroutines depends on the number of subscribed events, never on the
message rate.

# What never blocks

Subscribe, Unsubscribe and Publish never wait on the network: they take a
mutex that is never held across a network call, then either queue a command
for the topology goroutine (unbounded) or hand the batch to the publisher
(bounded; when full, or while the broker is down, the batch is dropped and
counted in Stats.PublishDropped). Stats and QueueName do not block either.
WaitReady and Close do wait (Close for at most a few seconds on a dead peer).

# Callbacks

A deliver func is called from a reader goroutine, one call at a time per
subscription; different events are delivered concurrently. It owns the body
it is given. It must not block (write to buffers, never to a socket) and must
not call Close (Close waits for the reader that is calling it). It may call
Publish, Subscribe and Unsubscribe.

Delivery stops when Unsubscribe (or Close) is called: a reader checks the
subscription just before each call, so at most one call that had already
passed that check can begin after Unsubscribe returns. Unsubscribe does not
wait for a running deliver call, so that a caller may hold its own locks
while calling it.

# Locks

AMQP.mu guards the caller-facing subscription table and the command queue;
sub.mu serializes deliver calls of one subscription. Order: sub.mu, then
AMQP.mu (a deliver func may call Subscribe). Neither is held across a
network call.

# Outages

A broker that is down at New is not an error. While the broker is
unreachable, Publish drops, Subscribe and Unsubscribe still update the
table, and the topology goroutine retries with backoff between
Config.ReconnectMin and Config.ReconnectMax. An outage is logged once when
it begins ("broker unreachable, retrying") and once when it ends ("broker
connection restored"); retries in between log at debug level only. A
channel closed by a broker exception is reopened alone (with its
subscriptions); if that fails, the whole connection is rebuilt with backoff.
*/
package bridge
