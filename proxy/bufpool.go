package proxy

import "sync"

// bufferPool pools copy buffers of one fixed size (B is an array type):
// the tunnels' and the streamed bodies'.
type bufferPool[B any] struct{ p sync.Pool }

func (bp *bufferPool[B]) get() *B {
	if b, ok := bp.p.Get().(*B); ok {
		return b
	}
	return new(B)
}

func (bp *bufferPool[B]) put(b *B) { bp.p.Put(b) }
