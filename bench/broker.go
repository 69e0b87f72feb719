package bench

import (
	"os/exec"
	"strings"
	"time"
)

// brokerTopology counts what RabbitMQ holds, with rabbitmqctl (on the
// broker's machine). It returns nil when rabbitmqctl is not available.
func brokerTopology() *BrokerResult {
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		return nil
	}
	count := func(args ...string) int {
		cmd := exec.Command("rabbitmqctl", append([]string{"-q", "--no-table-headers"}, args...)...)
		done := make(chan struct{})
		var out []byte
		go func() { out, _ = cmd.Output(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		n := 0
		for _, line := range strings.Split(string(out), "\n") {
			if strings.TrimSpace(line) != "" {
				n++
			}
		}
		return n
	}
	return &BrokerResult{
		Queues:    count("list_queues", "name"),
		Bindings:  count("list_bindings", "source_name"),
		Consumers: count("list_consumers", "queue_name"),
		Channels:  count("list_channels", "pid"),
	}
}
