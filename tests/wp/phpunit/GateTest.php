<?php
/**
 * [kyc_gate], kycb_is_verified() and the filter: approved people only, cached, fail closed.
 *
 * @package KycBridge
 */

namespace KycBridge\Tests;

use KycBridge\Kyc_Lookup;
use KycBridge\Status;

/**
 * Gate logic against the real bridge.
 */
class GateTest extends TestCase {

	/**
	 * Gated shortcode.
	 *
	 * @param string $attrs Attributes.
	 * @return string
	 */
	private function gate( $attrs ) {
		return do_shortcode( '[kyc_gate ' . $attrs . ']<p class="secret">Members content</p>[/kyc_gate]' );
	}

	public function test_approved_enhanced_investor_sees_the_content() {
		$id = $this->log_in( self::fixtures()['people']['approved_investor']['email'] );
		$this->assertStringContainsString( 'Members content', $this->gate( 'type="investor" level="enhanced"' ) );
		$this->assertStringContainsString( 'Members content', $this->gate( 'level="basic"' ), 'enhanced is at least basic' );
		$this->assertTrue( kycb_is_verified( $id, array( 'type' => 'investor' ) ) );
		$this->assertTrue( apply_filters( 'kycb_user_is_verified', false, $id, array( 'level' => 'enhanced' ) ) );
	}

	public function test_basic_approval_does_not_open_an_enhanced_gate() {
		$id   = $this->log_in( self::fixtures()['people']['approved_customer']['email'] );
		$html = $this->gate( 'level="enhanced"' );
		$this->assertStringNotContainsString( 'Members content', $html );
		$this->assertStringContainsString( 'available once your identity is verified', $html );
		$this->assertStringContainsString( 'Members content', $this->gate( 'type="customer" level="basic"' ) );
		$this->assertFalse( kycb_is_verified( $id, array( 'type' => 'investor' ) ), 'approved as customer is not approved as investor' );
		$this->assertFalse( apply_filters( 'kycb_user_is_verified', false, $id, array( 'level' => 'enhanced' ) ) );
	}

	public function test_not_approved_gets_message_and_verify_button() {
		$this->log_in( self::fixtures()['people']['review']['email'] );
		$this->settings( array( 'gate_message' => 'Investors only, sorry.' ) );
		$html = $this->gate( 'type="investor"' );
		$this->assertStringNotContainsString( 'Members content', $html );
		$this->assertStringContainsString( 'Investors only, sorry.', $html );
		$this->assertStringContainsString( 'We are checking your documents', $html );

		$this->log_in( 'nobody-yet@example.test' );
		$html = $this->gate( 'type="investor" message="Verify first &lt;b&gt;please&lt;/b&gt;"' );
		$this->assertStringContainsString( 'kycb-open', $html );
		$this->assertStringNotContainsString( '<b>', $html );
	}

	public function test_an_approved_person_who_withdrew_consent_no_longer_passes_and_is_told_why() {
		$email = self::fixtures()['people']['gate_withdraw']['email'];
		$id    = $this->log_in( $email );
		$this->assertStringContainsString( 'Members content', $this->gate( 'type="customer"' ) );
		$this->assertFalse( is_wp_error( \KycBridge\Bridge_Client::from_settings()->withdraw_consent( $email ) ) );
		Kyc_Lookup::forget( $email );
		$html = $this->gate( 'type="customer"' );
		$this->assertStringNotContainsString( 'Members content', $html );
		$this->assertFalse( kycb_is_verified( $id, array( 'type' => 'customer' ) ) );
		$this->assertStringContainsString( 'Consent withdrawn', $html );
		$this->assertStringContainsString( 'no longer counts here', $html );
		$this->assertStringContainsString( 'Verify again</button>', $html, 'consenting and verifying again is offered' );
		$described = Status::describe_answer(
			array(
				'status'            => 'not_started',
				'consent_withdrawn' => true,
			)
		);
		$this->assertTrue( $described['can_start'] );
	}

	public function test_a_lapsed_approval_is_told_to_renew_not_that_an_attempt_failed() {
		$lapsed = Status::describe_answer(
			array(
				'status'    => 'expired',
				'lapsed'    => true,
				'may_retry' => true,
			)
		);
		$this->assertSame( 'Renewal needed', $lapsed['label'] );
		$this->assertStringContainsString( 'has lapsed', $lapsed['message'] );
		$this->assertTrue( $lapsed['can_start'] );
		$expired = Status::describe_answer(
			array(
				'status'    => 'expired',
				'lapsed'    => false,
				'may_retry' => true,
			)
		);
		$this->assertStringContainsString( 'did not complete', $expired['message'] );
	}

	public function test_logged_out_never_passes() {
		$this->assertStringNotContainsString( 'Members content', $this->gate( '' ) );
		$this->assertFalse( kycb_is_verified( 0 ) );
	}

	public function test_fails_closed_when_the_bridge_is_down() {
		$id = $this->log_in( self::fixtures()['people']['approved_investor']['email'] );
		$this->bridge_down();
		$this->assertFalse( kycb_is_verified( $id, array( 'type' => 'investor' ) ) );
		$this->assertStringNotContainsString( 'Members content', $this->gate( 'type="investor"' ) );
		$this->settings( array( 'bridge_url' => self::fixtures()['bridge_url'] ) );
		Kyc_Lookup::forget( self::fixtures()['people']['approved_investor']['email'] );
		$this->assertTrue( kycb_is_verified( $id, array( 'type' => 'investor' ) ) );
	}

	public function test_fails_closed_with_a_wrong_token() {
		$id = $this->log_in( self::fixtures()['people']['approved_investor']['email'] );
		\KycBridge\Settings::set_token( 'not-the-token' );
		$this->assertFalse( kycb_is_verified( $id ) );
	}

	public function test_answers_are_cached_briefly_in_transients() {
		$email = self::fixtures()['people']['approved_investor']['email'];
		$id    = $this->log_in( $email );
		$this->assertTrue( kycb_is_verified( $id ) );
		$cached = get_transient( Kyc_Lookup::cache_key( $email, '' ) );
		$this->assertSame( 'approved', $cached['status'] );
		$timeout = (int) get_option( '_transient_timeout_' . Kyc_Lookup::cache_key( $email, '' ) );
		$this->assertLessThanOrEqual( time() + MINUTE_IN_SECONDS, $timeout );
		// Within the cache time the answer stands without a call to the bridge.
		update_option( 'kycb_settings', array_merge( \KycBridge\Settings::get(), array( 'bridge_url' => 'http://127.0.0.1:' . self::fixtures()['closed_port'] ) ) );
		$this->assertTrue( kycb_is_verified( $id ) );
	}

	public function test_result_filter_can_adjust_the_outcome() {
		$id     = $this->log_in( self::fixtures()['people']['review']['email'] );
		$change = function () {
			return true;
		};
		add_filter( 'kycb_verification_result', $change );
		try {
			$this->assertTrue( kycb_is_verified( $id ) );
		} finally {
			remove_filter( 'kycb_verification_result', $change );
		}
		$this->assertFalse( kycb_is_verified( $id ) );
	}

	public function test_gate_rule() {
		$enhanced = array(
			'status'    => 'approved',
			'user_type' => 'investor',
			'level'     => 'enhanced',
		);
		$this->assertTrue( Status::passes( $enhanced, array() ) );
		$this->assertTrue( Status::passes( $enhanced, array( 'level' => 'basic' ) ) );
		$this->assertFalse( Status::passes( array_merge( $enhanced, array( 'level' => 'basic' ) ), array( 'level' => 'enhanced' ) ) );
		$this->assertFalse( Status::passes( $enhanced, array( 'level' => 'platinum' ) ), 'an unknown level never passes' );
		$this->assertFalse( Status::passes( $enhanced, array( 'type' => 'vendor' ) ) );
		$this->assertFalse( Status::passes( array_merge( $enhanced, array( 'status' => 'needs_review' ) ), array() ) );
		$this->assertTrue( Status::passes( array_merge( $enhanced, array( 'status' => 'needs_review' ) ), array( 'status' => 'needs_review' ) ) );
		$this->assertFalse( Status::passes( null, array() ) );
	}
}
