package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loadSampler records the host's 1-minute load average while one side of
// the comparison runs. The sandbox shares its cores with everything else on
// the machine, and every API write waits for CPU, so a timing means little
// without the load it was taken under: each side's figure is reported with
// the mean and peak load seen during it.
type loadSampler struct {
	mu      sync.Mutex
	samples []float64
	stop    context.CancelFunc
	done    chan struct{}
}

// sampleLoad reads /proc/loadavg every interval until stopped.
func sampleLoad(ctx context.Context, interval time.Duration) *loadSampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &loadSampler{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			if l, err := loadAvg(); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, l)
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// loadStats is the load seen during one side.
type loadStats struct {
	mean, peak float64
	samples    int
}

func (l loadStats) String() string {
	if l.samples == 0 {
		return "load unknown"
	}
	return fmt.Sprintf("load avg %.1f (peak %.1f, %d samples)", l.mean, l.peak, l.samples)
}

// finish stops sampling and summarises.
func (s *loadSampler) finish() loadStats {
	s.stop()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	var st loadStats
	for _, v := range s.samples {
		st.mean += v
		st.peak = max(st.peak, v)
	}
	st.samples = len(s.samples)
	if st.samples > 0 {
		st.mean /= float64(st.samples)
	}
	return st
}

// loadAvg is the first field of /proc/loadavg (the 1-minute load average).
func loadAvg() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, fmt.Errorf("failed to read load average %q: %w", "/proc/loadavg", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("failed to parse load average %q: empty", "/proc/loadavg")
	}
	return strconv.ParseFloat(f[0], 64)
}
