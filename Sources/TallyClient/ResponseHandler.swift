import NIOCore
import TallyWire

/// The client's only handler of its own: decodes each response frame, hands a read's worth of them to the
/// router at the end of the read, and writes what the router queued meanwhile with one flush. It also tells
/// the router when the connection ends. Framing happens before it (`FrameDecoder`); frames are encoded by
/// the router, so nothing encodes after it.
final class ResponseHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = ByteBuffer

    private let router: ResponseRouter
    /// Responses decoded in the current read, routed together under one lock in `channelReadComplete`.
    private var received: [(id: UInt32, response: Response)] = []

    init(router: ResponseRouter) {
        self.router = router
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        do {
            received.append((frame.requestID, try WireCodec.decodeResponse(frame)))
        } catch {
            // A peer that sends what we cannot read cannot be trusted with the requests after it either.
            routeReceived(context: context)
            router.close(.malformedResponse(error.description))
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        routeReceived(context: context)
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        routeReceived(context: context)
        router.close(.connectionClosed(serverError: nil))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Framing errors (an oversized or impossible length) and socket errors both end the connection.
        let reason: TallyClientError =
            if let wireError = error as? WireError {
                .malformedResponse(wireError.description)
            } else {
                .connectionFailed("\(error)")
            }
        routeReceived(context: context)
        router.close(reason)
        context.close(promise: nil)
    }

    /// Resumes the callers of this read's responses, then writes whatever they and the router queued.
    private func routeReceived(context: ChannelHandlerContext) {
        guard !received.isEmpty else { return }
        let resumptions = router.receive(received)
        received.removeAll(keepingCapacity: true)
        router.resume(resumptions)
        Self.drainOutbound(router, context.channel)
    }

    /// Writes every queued frame as one buffer with one flush; a failed write fails the requests in it.
    /// Runs on the event loop.
    static func drainOutbound(_ router: ResponseRouter, _ channel: any Channel) {
        guard let (bytes, ids) = router.takeOutbound() else { return }
        channel.writeAndFlush(bytes).whenFailure { error in
            router.fail(ids, .writeFailed("\(error)"))
        }
    }
}
