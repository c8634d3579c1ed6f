package edge

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/edgepoll/edgepoll/shared"
	"github.com/vmihailenco/msgpack/v5"
)

const tok43 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func TestDecodeVoteJSON(t *testing.T) {
	ok := []struct {
		in    string
		tok   string
		ch    []uint8
		multi bool
	}{
		{`{"token":"` + tok43 + `","choice":2}`, tok43, []uint8{2}, false},
		{` {"choice":0} `, "", []uint8{0}, false},
		{"{\n\t\"choices\" : [ 1 , 63 ],\r\n\"token\":\"a\"}", "a", []uint8{1, 63}, true},
		{`{"choices":[]}`, "", []uint8{}, true},
		{`{"token":"a\"b\\c\/d\u00e9\ud83d\ude00","choice":10}`, "a\"b\\c/dé😀", []uint8{10}, false},
		{`{"token":"\n\t\r\b\f","choice":1}`, "\n\t\r\b\f", []uint8{1}, false},
	}
	for _, c := range ok {
		var b ballot
		if err := decodeVoteJSON([]byte(c.in), &b); err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if b.Token != c.tok || !bytes.Equal(b.choices(), c.ch) || b.Multiple != c.multi {
			t.Errorf("%s: got %+v", c.in, b)
		}
	}
	bad := []string{
		``, ` `, `null`, `[]`, `"x"`, `{`, `{"choice":1`, `{"choice":1,}`, `{,"choice":1}`, `{"choice" 1}`,
		`{"choice":01}`, `{"choice":1.0}`, `{"choice":1e2}`, `{"choice":-0}`, `{"choice":64}`, `{"choice":256}`,
		`{"choice":99999999999999999999999}`, `{"choice":true}`, `{"choice":null}`, `{"choice":[1]}`,
		`{"choices":1}`, `{"choices":[1,]}`, `{"choices":[,1]}`, `{"choices":[1 2]}`, `{"choices":[1]`,
		`{"choices":[` + strings.Repeat("1,", 64) + `1]}`, `{"choice":1,"choices":[2]}`, `{"choices":[2],"choice":1}`,
		`{"choice":1,"choice":2}`, `{"token":"a","token":"a","choice":1}`, `{"token":1,"choice":1}`,
		`{"token":"a` + "\x01" + `","choice":1}`, `{"token":"\x","choice":1}`, `{"token":"\u12","choice":1}`,
		`{"token":"\ud800","choice":1}`, `{"token":"` + "\xff" + `","choice":1}`, `{"token":"` + strings.Repeat("a", 129) + `","choice":1}`,
		`{"token":"` + strings.Repeat(`\n`, 129) + `","choice":1}`, `{"token":"a"}`, `{}`, `{"poll":"x","choice":1}`,
		`{"choice":1} {}`, `{"choice":1}x`, `{'choice':1}`, `{choice:1}`, `{"cho\u0069ce":1}`, `{"choice":1`,
		`{"token":"abc`, `{"token`,
	}
	for _, in := range bad {
		var b ballot
		err := decodeVoteJSON([]byte(in), &b)
		if shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("%q: err %v, want EINVALID", in, err)
		}
	}
}

func TestDecodeVoteMsgpack(t *testing.T) {
	enc := func(f func(e *msgpack.Encoder)) []byte {
		var buf bytes.Buffer
		f(msgpack.NewEncoder(&buf))
		return buf.Bytes()
	}
	var b ballot
	in := enc(func(e *msgpack.Encoder) {
		_ = e.EncodeMapLen(2)
		_ = e.EncodeString("choices")
		_ = e.EncodeBytes([]byte{3, 1})
		_ = e.EncodeString("token")
		_ = e.EncodeString(tok43)
	})
	if err := decodeVoteMsgpack(in, &b); err != nil || b.Token != tok43 || !bytes.Equal(b.choices(), []uint8{3, 1}) {
		t.Errorf("bin choices: %+v %v", b, err)
	}
	in = enc(func(e *msgpack.Encoder) {
		_ = e.EncodeMapLen(1)
		_ = e.EncodeString("choice")
		_ = e.EncodeInt8(5)
	})
	if err := decodeVoteMsgpack(in, &b); err != nil || b.Token != "" || !bytes.Equal(b.choices(), []uint8{5}) {
		t.Errorf("int8 choice: %+v %v", b, err)
	}
	// A map encoded by the reflection-based encoder decodes too.
	in, _ = msgpack.Marshal(map[string]any{"token": "t", "choices": []int{0, 2}})
	if err := decodeVoteMsgpack(in, &b); err != nil || b.Token != "t" || !bytes.Equal(b.choices(), []uint8{0, 2}) {
		t.Errorf("reflect-encoded map: %+v %v", b, err)
	}
	bad := [][]byte{
		nil, {0x80}, {0x90}, {0xc0},
		enc(func(e *msgpack.Encoder) { _ = e.EncodeMapLen(3) }),
		enc(func(e *msgpack.Encoder) { _ = e.EncodeMapLen(1); _ = e.EncodeString("choice"); _ = e.EncodeInt(-1) }),
		enc(func(e *msgpack.Encoder) { _ = e.EncodeMapLen(1); _ = e.EncodeString("choice"); _ = e.EncodeUint(64) }),
		enc(func(e *msgpack.Encoder) { _ = e.EncodeMapLen(1); _ = e.EncodeString("choice"); _ = e.EncodeString("1") }),
		enc(func(e *msgpack.Encoder) { _ = e.EncodeMapLen(1); _ = e.EncodeString("choice"); _ = e.EncodeFloat64(1) }),
		enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("choices")
			_ = e.EncodeBytes([]byte{64})
		}),
		enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("choices")
			_ = e.EncodeBytes(make([]byte, 65))
		}),
		enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("choices")
			_ = e.EncodeArrayLen(65)
		}),
		enc(func(e *msgpack.Encoder) { _ = e.EncodeMapLen(1); _ = e.EncodeString("other"); _ = e.EncodeUint(1) }),
		enc(func(e *msgpack.Encoder) { _ = e.EncodeMapLen(1); _ = e.EncodeString("token"); _ = e.EncodeString("x") }),
		enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(2)
			_ = e.EncodeString("choice")
			_ = e.EncodeUint(1)
			_ = e.EncodeString("choice")
			_ = e.EncodeUint(1)
		}),
		enc(func(e *msgpack.Encoder) {
			_ = e.EncodeMapLen(2)
			_ = e.EncodeString("token")
			_ = e.EncodeString(strings.Repeat("a", 200))
			_ = e.EncodeString("choice")
			_ = e.EncodeUint(1)
		}),
		append(enc(func(e *msgpack.Encoder) { _ = e.EncodeMapLen(1); _ = e.EncodeString("choice"); _ = e.EncodeUint(1) }), 0),
		{0x81, 0xa6, 'c', 'h', 'o', 'i', 'c', 'e'},
		{0x81, 0xa6, 'c', 'h', 'o', 'i'},
		{0x81, 0xdb, 0xff, 0xff, 0xff, 0xff},
	}
	for i, in := range bad {
		if err := decodeVoteMsgpack(in, &b); shared.ErrorCode(err) != shared.EINVALID {
			t.Errorf("bad msgpack %d (%x): err %v, want EINVALID", i, in, err)
		}
	}
}

// checkBallot asserts the invariants of a decoded ballot.
func checkBallot(t *testing.T, b *ballot) {
	t.Helper()
	if b.N < 0 || b.N > shared.MaxChoicesCap || len(b.Token) > maxTokenLen || !utf8.ValidString(b.Token) ||
		b.NW < 0 || b.NW > shared.MaxWordsCap || b.Value < -scaleOff || b.Value > scaleOff {
		t.Fatalf("ballot out of bounds: %+v", b)
	}
	for _, w := range b.words() {
		if len(w) > maxRawWordLen || !utf8.ValidString(w) {
			t.Fatalf("word %q out of bounds", w)
		}
	}
	if (b.Field == fieldValue || b.Field == fieldWords) && b.N != 0 || b.Field != fieldWords && b.NW != 0 {
		t.Fatalf("ballot mixes keys: %+v", b)
	}
	for _, c := range b.choices() {
		if c >= shared.MaxOptions {
			t.Fatalf("choice %d out of range", c)
		}
	}
}

// FuzzDecodeVote checks the JSON vote decoder never panics, keeps its bounds,
// and accepts only JSON that encoding/json reads to the same values.
func FuzzDecodeVote(f *testing.F) {
	f.Add([]byte(`{"token":"` + tok43 + `","choice":1}`))
	f.Add([]byte(`{"choices":[0,2,63],"token":"x\u00e9"}`))
	f.Add([]byte(`{"token":"` + tok43 + `","value":-7}`))
	f.Add([]byte(`{"value":123456789012345678901234567890}`))
	f.Add([]byte(`{"token":"` + tok43 + `","words":["Amazing","caf\u00e9"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b ballot
		err := decodeVoteJSON(data, &b)
		if err != nil {
			if shared.ErrorCode(err) != shared.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		checkBallot(t, &b)
		if b.N == 0 && b.Field == fieldChoice {
			t.Fatal("accepted a vote without a choice")
		}
		var std struct {
			Token   *string      `json:"token"`
			Choice  *int         `json:"choice"`
			Choices []int        `json:"choices"`
			Value   *json.Number `json:"value"`
			Words   []string     `json:"words"`
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&std); err != nil {
			t.Fatalf("accepted %q, encoding/json says %v", data, err)
		}
		if std.Token != nil && *std.Token != b.Token || std.Token == nil && b.Token != "" {
			t.Fatalf("token %q, encoding/json %v", b.Token, std.Token)
		}
		var want []uint8
		if std.Choice != nil {
			want = append(want, uint8(*std.Choice))
		}
		for _, c := range std.Choices {
			want = append(want, uint8(c))
		}
		if !bytes.Equal(want, b.choices()) {
			t.Fatalf("choices %v, encoding/json %v", b.choices(), want)
		}
		if (std.Value != nil) != (b.Field == fieldValue) {
			t.Fatalf("value %v, encoding/json %v", b.Value, std.Value)
		}
		if std.Value != nil {
			n, err := strconv.ParseInt(std.Value.String(), 10, 64)
			if err != nil && b.Value != scaleOff && b.Value != -scaleOff || err == nil && max(-scaleOff, min(n, scaleOff)) != b.Value {
				t.Fatalf("value %d, encoding/json %s", b.Value, std.Value)
			}
		}
		if strings.Join(std.Words, "\x00") != strings.Join(b.words(), "\x00") {
			t.Fatalf("words %q, encoding/json %q", b.words(), std.Words)
		}
	})
}

// FuzzDecodeVoteMsgpack checks the MessagePack vote decoder never panics and
// keeps its bounds.
func FuzzDecodeVoteMsgpack(f *testing.F) {
	in, _ := msgpack.Marshal(map[string]any{"token": tok43, "choice": 1})
	f.Add(in)
	in, _ = msgpack.Marshal(map[string]any{"choices": []byte{1, 2}})
	f.Add(in)
	in, _ = msgpack.Marshal(map[string]any{"token": tok43, "value": -3})
	f.Add(in)
	in, _ = msgpack.Marshal(map[string]any{"words": []string{"Amazing", "café"}})
	f.Add(in)
	f.Fuzz(func(t *testing.T, data []byte) {
		var b ballot
		if err := decodeVoteMsgpack(data, &b); err != nil {
			if shared.ErrorCode(err) != shared.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		checkBallot(t, &b)
	})
}

func BenchmarkDecodeVote(b *testing.B) {
	body := []byte(`{"token":"` + tok43 + `","choice":2}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	var bl ballot
	for b.Loop() {
		if err := decodeVoteJSON(body, &bl); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeVoteMsgpack(b *testing.B) {
	body, _ := msgpack.Marshal(map[string]any{"token": tok43, "choice": 2})
	b.ReportAllocs()
	var bl ballot
	for b.Loop() {
		if err := decodeVoteMsgpack(body, &bl); err != nil {
			b.Fatal(err)
		}
	}
}

// The decoders of the new kinds' ballots, JSON and MessagePack.
func BenchmarkDecodeVoteKinds(b *testing.B) {
	for _, c := range []struct {
		name, body string
		key        string
		val        any
	}{
		{"scale", `{"token":"` + tok43 + `","value":-7}`, "value", -7},
		{"ranked", `{"token":"` + tok43 + `","choices":[2,0,3,1]}`, "choices", []int{2, 0, 3, 1}},
		{"words", `{"token":"` + tok43 + `","words":["Amazing","fun"]}`, "words", []string{"Amazing", "fun"}},
	} {
		b.Run(c.name+"/json", func(b *testing.B) {
			body := []byte(c.body)
			b.ReportAllocs()
			var bl ballot
			for b.Loop() {
				if err := decodeVoteJSON(body, &bl); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/msgpack", func(b *testing.B) {
			body, _ := msgpack.Marshal(map[string]any{"token": tok43, c.key: c.val})
			b.ReportAllocs()
			var bl ballot
			for b.Loop() {
				if err := decodeVoteMsgpack(body, &bl); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
