// Command benchorigin is the load generator behind `make bench-origin`
// (scripts/bench-origin.sh). Subcommands:
//
//	benchorigin ingest -origin URL -token T -key kid=secret [-voters 1000000] [-batch 500] [-conns 4]
//	        [-kind single|scale|ranked|words] [-wire 1|2] [-poll ID]
//	    creates and opens a poll of that kind, sends signed batches of
//	    distinct voters, and prints "votes=N seconds=S votes_per_s=V
//	    p50_batch_ms=A p99_batch_ms=B". -wire 1 writes batches in wire
//	    version 1 (for an origin that predates version 2: the baseline).
//	benchorigin naive-server -listen ADDR -redis URL
//	    runs the naive baseline server (origin/naive).
//	benchorigin naive -url URL [-votes 50000] [-conns 64]
//	    sends one JSON request per vote and prints "votes=N seconds=S votes_per_s=V".
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/edgepoll/edgepoll/origin/adminclient"
	"github.com/edgepoll/edgepoll/origin/naive"
	"github.com/edgepoll/edgepoll/shared"
	"github.com/edgepoll/edgepoll/shared/sign"
	"github.com/valyala/fasthttp"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchorigin ingest|naive-server|naive [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "ingest":
		err = ingest(os.Args[2:])
	case "naive-server":
		err = naiveServer(os.Args[2:])
	case "naive":
		err = naiveLoad(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchorigin:", err)
		os.Exit(1)
	}
}

func transport(conns int) *http.Transport {
	return &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
}

func ingest(args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ExitOnError)
	originURL := fs.String("origin", "http://127.0.0.1:8080", "origin URL")
	token := fs.String("token", "", "admin token")
	keySpec := fs.String("key", "", "signing key kid=secret")
	voters := fs.Int("voters", 1_000_000, "distinct voters")
	batchSize := fs.Int("batch", 500, "votes per batch")
	conns := fs.Int("conns", 4, "concurrent connections")
	pollID := fs.String("poll", "bench", "poll id")
	options := fs.Int("options", 4, "poll options")
	kind := fs.String("kind", "single", "poll kind: single, scale (1-10), ranked (3 of the options) or words (one of 2,000 words, Zipf-like)")
	wire := fs.Int("wire", shared.WireVersion, "batch wire version: 1 (single only, for an origin that predates version 2) or 2")
	_ = fs.Parse(args)
	if *wire != 1 && *wire != 2 || *wire == 1 && *kind != "single" {
		return fmt.Errorf("-wire 1 is for single polls, -wire 2 for any")
	}
	keys, err := sign.ParseKeys(*keySpec)
	if err != nil {
		return err
	}
	key := keys[0]
	ctx := context.Background()
	ac := adminclient.New(*originURL, *token)
	req := &adminclient.CreateRequest{Poll: shared.Poll{ID: *pollID, Title: "Benchmark", Kind: shared.Kind(*kind),
		State: shared.StateDraft, Visibility: shared.VisibilityLive}, ExpectedVoters: *voters}
	switch req.Kind {
	case shared.KindSingle, shared.KindRanked:
		for i := 0; i < *options; i++ {
			req.Options = append(req.Options, shared.Option{Label: "option " + strconv.Itoa(i)})
		}
		if req.Kind == shared.KindRanked {
			req.MaxChoices = min(3, *options)
		}
	case shared.KindScale:
		req.Scale = &shared.Scale{Min: 1, Max: 10}
	case shared.KindWords:
		req.MaxWords = 1
	default:
		return fmt.Errorf("unknown -kind %q", *kind)
	}
	vocab := make([]string, 2000)
	for i := range vocab {
		vocab[i] = "word" + strconv.Itoa(i)
	}
	if _, err := ac.CreatePoll(ctx, req); err != nil {
		return fmt.Errorf("create poll: %w", err)
	}
	if _, err := ac.Open(ctx, *pollID); err != nil {
		return fmt.Errorf("open poll: %w", err)
	}

	// Encode every batch up front: the edge does that work, not the origin.
	n := (*voters + *batchSize - 1) / *batchSize
	bodies := make([][]byte, n)
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	at := time.Now().UnixMilli()
	for i := 0; i < n; i++ {
		b := &shared.Batch{Edge: "bench"}
		_, _ = rand.Read(b.ID[:])
		for j := 0; j < *batchSize && i**batchSize+j < *voters; j++ {
			var v shared.VoterID
			// Random-looking, distinct voter ids: a counter mixed with a seed.
			x := uint64(i**batchSize+j) + 1
			binary.LittleEndian.PutUint64(v[:8], x*0x9E3779B97F4A7C15^binary.LittleEndian.Uint64(seed[:]))
			binary.LittleEndian.PutUint64(v[8:], (x^0xD6E8FEB86659FD93)*0xBF58476D1CE4E5B9)
			vote := shared.Vote{Poll: *pollID, Voter: v, Choices: []uint8{uint8(x % uint64(*options))}, At: at}
			switch req.Kind {
			case shared.KindScale:
				vote.Choices[0] = uint8(x % 10)
			case shared.KindRanked:
				o := uint8(x % uint64(*options))
				vote.Choices = []uint8{o, (o + 1) % uint8(*options), (o + 2) % uint8(*options)}[:req.MaxChoices]
			case shared.KindWords:
				// Zipf-like: word k with weight about 1/k, from the
				// voter's hash (a few words take most votes, as in a show).
				h := (x * 0x9E3779B97F4A7C15) >> 11
				k := int(float64(len(vocab)) * math.Pow(float64(h%1_000_000+1)/1_000_000, 4))
				vote.Choices, vote.Words = []uint8{}, []string{vocab[min(k, len(vocab)-1)]}
			}
			b.Votes = append(b.Votes, vote)
		}
		if *wire == 1 {
			bodies[i], err = marshalV1(b)
		} else {
			bodies[i], err = shared.MarshalBatch(b)
		}
		if err != nil {
			return err
		}
	}
	// Sign up front too (signing is the edge's work; the signatures stay
	// inside the origin's window for the few seconds the run takes).
	sigs := make([]sign.Signature, n)
	now := time.Now()
	for i := range bodies {
		sigs[i] = sign.Sign(key, now, bodies[i])
	}
	client := &fasthttp.Client{MaxConnsPerHost: *conns, ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second}
	url := *originURL + "/v1/ingest"
	var next atomic.Int64
	var accepted atomic.Uint64
	lat := make([][]time.Duration, *conns)
	errc := make(chan error, *conns)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < *conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				req.SetRequestURI(url)
				req.Header.SetMethod(fasthttp.MethodPost)
				req.Header.SetContentType(shared.ContentTypeMsgpack)
				sigs[i].SetHeaders(req.Header.Set)
				req.SetBodyRaw(bodies[i])
				err := client.Do(req, resp)
				fasthttp.ReleaseRequest(req)
				if err != nil {
					fasthttp.ReleaseResponse(resp)
					errc <- err
					return
				}
				if resp.StatusCode() != fasthttp.StatusOK {
					errc <- fmt.Errorf("batch %d: %d %s", i, resp.StatusCode(), resp.Body())
					fasthttp.ReleaseResponse(resp)
					return
				}
				var rc shared.Receipt
				err = shared.UnmarshalReceipt(resp.Body(), &rc)
				fasthttp.ReleaseResponse(resp)
				if err != nil {
					errc <- err
					return
				}
				accepted.Add(uint64(rc.Accepted))
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	if accepted.Load() != uint64(*voters) {
		return fmt.Errorf("accepted %d votes, want %d", accepted.Load(), *voters)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	fmt.Printf("votes=%d seconds=%.3f votes_per_s=%.0f p50_batch_ms=%.2f p99_batch_ms=%.2f\n",
		accepted.Load(), elapsed.Seconds(), float64(accepted.Load())/elapsed.Seconds(), pct(0.50), pct(0.99))
	return nil
}

// marshalV1 encodes a batch of single-choice votes in wire version 1
// (docs/WIRE.md), which origins that predate version 2 read.
func marshalV1(b *shared.Batch) ([]byte, error) {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	err := errors.Join(e.EncodeArrayLen(4), e.EncodeUint(1), e.EncodeBytes(b.ID[:]), e.EncodeString(b.Edge), e.EncodeArrayLen(len(b.Votes)))
	for i := range b.Votes {
		v := &b.Votes[i]
		err = errors.Join(err, e.EncodeArrayLen(4), e.EncodeString(v.Poll), e.EncodeBytes(v.Voter[:]), e.EncodeBytes(v.Choices), e.EncodeInt(v.At))
	}
	return buf.Bytes(), err
}

func naiveServer(args []string) error {
	fs := flag.NewFlagSet("naive-server", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:8090", "listen address")
	redisURL := fs.String("redis", "redis://127.0.0.1:6379/0", "redis URL")
	_ = fs.Parse(args)
	opt, err := redis.ParseURL(*redisURL)
	if err != nil {
		return err
	}
	opt.PoolSize = 128
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	fmt.Fprintln(os.Stderr, "naive server listening on", *listen)
	return http.ListenAndServe(*listen, naive.New(rdb))
}

func naiveLoad(args []string) error {
	fs := flag.NewFlagSet("naive", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:8090", "naive server URL")
	votes := fs.Int("votes", 50_000, "votes to send")
	conns := fs.Int("conns", 64, "concurrent clients")
	_ = fs.Parse(args)
	client := &http.Client{Transport: transport(*conns), Timeout: 30 * time.Second}
	var next, counted atomic.Int64
	errc := make(chan error, *conns)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < *conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id [16]byte
			for {
				i := next.Add(1) - 1
				if i >= int64(*votes) {
					return
				}
				_, _ = rand.Read(id[:])
				body := `{"poll":"naive","voter":"` + hex.EncodeToString(id[:]) + `","choice":` + strconv.FormatInt(i%4, 10) + `}`
				resp, err := client.Post(*url+"/vote", "application/json", bytes.NewReader([]byte(body)))
				if err != nil {
					errc <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errc <- fmt.Errorf("vote %d: status %d", i, resp.StatusCode)
					return
				}
				counted.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	fmt.Printf("votes=%d seconds=%.3f votes_per_s=%.0f\n", counted.Load(), elapsed.Seconds(), float64(counted.Load())/elapsed.Seconds())
	return nil
}
