import NIOCore
import TallyWire

/// The client's only handler of its own: decodes each response frame and hands it to the router, and
/// tells the router when the connection ends. Framing happens before it (`FrameDecoder`).
final class ResponseHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame

    private let router: ResponseRouter

    init(router: ResponseRouter) {
        self.router = router
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let response: Response
        do {
            response = try WireCodec.decodeResponse(frame)
        } catch {
            // A peer that sends what we cannot read cannot be trusted with the requests after it either.
            router.close(.malformedResponse(error.description))
            context.close(promise: nil)
            return
        }
        let frames = router.receive(frame.requestID, response)
        guard !frames.isEmpty else { return }
        for frame in frames { context.write(wrapOutboundOut(frame), promise: nil) }
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
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
        router.close(reason)
        context.close(promise: nil)
    }
}
