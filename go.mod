module github.com/relay-dev/relay

go 1.26.8

require (
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/lesismal/llib v1.2.4 // indirect
	github.com/lesismal/nbio v1.6.12 // indirect
	github.com/rabbitmq/amqp091-go v1.17.0 // indirect
	github.com/vmihailenco/msgpack/v5 v5.4.1 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)
