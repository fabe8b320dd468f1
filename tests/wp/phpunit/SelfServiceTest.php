<?php
/**
 * Self-service: [kyc_status], the profile section, and withdrawing consent.
 *
 * @package KycBridge
 */

namespace KycBridge\Tests;

use KycBridge\Bridge_Client;
use KycBridge\Kyc_Lookup;
use KycBridge\Self_Service;

/**
 * Self_Service.
 */
class SelfServiceTest extends TestCase {

	protected function tearDown(): void {
		$_POST    = array();
		$_REQUEST = array();
		unset( $_SERVER['HTTP_REFERER'] );
		parent::tearDown();
	}

	/**
	 * Post the withdrawal as the current user.
	 *
	 * @param array $fields Extra fields (confirm, a wrong nonce).
	 * @return string Where it redirected to.
	 */
	private function withdraw( $fields = array() ) {
		$_POST    = array_merge(
			array(
				'action'      => Self_Service::ACTION,
				'_kycb_nonce' => wp_create_nonce( Self_Service::nonce_action( get_current_user_id() ) ),
			),
			$fields
		);
		$_REQUEST = $_POST;
		$_SERVER['HTTP_REFERER'] = home_url( '/kyc-my-status/' );
		try {
			Self_Service::handle();
		} catch ( Redirect_Exception $redirect ) {
			return $redirect->getMessage();
		}
		$this->fail( 'no redirect' );
	}

	public function test_logged_out_visitors_are_asked_to_log_in() {
		$this->assertStringContainsString( 'Please log in to see your identity verification', do_shortcode( '[kyc_status]' ) );
	}

	public function test_a_person_sees_their_state_and_the_withdrawal() {
		$this->log_in( self::fixtures()['people']['approved_customer']['email'] );
		$html = do_shortcode( '[kyc_status]' );
		$this->assertStringContainsString( 'data-status="approved"', $html );
		$this->assertStringContainsString( '<strong class="kycb-status-label">Verified</strong>', $html );
		$this->assertStringContainsString( 'name="action" value="kycb_withdraw_consent"', $html );
		$this->assertMatchesRegularExpression( '/name="_kycb_nonce" value="[0-9a-f]{10}"/', $html );

		$this->log_in( 'self-never-verified@example.test' );
		$html = do_shortcode( '[kyc_status]' );
		$this->assertStringContainsString( 'data-status="not_started"', $html );
		$this->assertStringNotContainsString( 'kycb_withdraw_consent', $html );  // nothing to withdraw
	}

	public function test_profile_section_is_for_ones_own_profile_and_its_form_sits_outside_the_profile_form() {
		$me   = $this->log_in( self::fixtures()['people']['approved_customer']['email'] );
		$html = $this->output(
			function () use ( $me ) {
				do_action( 'show_user_profile', get_userdata( $me ) );
			}
		);
		$this->assertStringContainsString( 'Identity verification', $html );
		$this->assertStringContainsString( 'form="kycb-withdraw-form"', $html );
		$this->assertStringNotContainsString( '<form', $html );  // no form inside the profile form
		$footer = $this->output( array( Self_Service::class, 'profile_form' ) );
		$this->assertStringContainsString( '<form id="kycb-withdraw-form"', $footer );

		$other = $this->user( 'self-someone-else@example.test' );
		$this->assertSame(
			'',
			$this->output(
				function () use ( $other ) {
					Self_Service::profile_section( get_userdata( $other ) );
				}
			)
		);
	}

	public function test_withdrawal_needs_the_tick_and_the_persons_own_nonce() {
		$person = self::fixtures()['people']['self_withdraw'];
		$this->log_in( $person['email'] );
		$this->withdraw();
		$this->assertStringContainsString( 'Tick the box', do_shortcode( '[kyc_status]' ) );
		$this->assertFalse( Bridge_Client::from_settings()->kyc_status( $person['email'] )['consent_withdrawn'] );

		$someone = wp_create_nonce( Self_Service::nonce_action( 1 ) );
		try {
			$this->withdraw(
				array(
					'confirm'     => '1',
					'_kycb_nonce' => $someone,
				)
			);
			$this->fail( 'another user\'s nonce was accepted' );
		} catch ( WP_Die_Exception $refused ) {
			$this->assertSame( 403, $refused->getCode() );
		}
		$this->assertFalse( Bridge_Client::from_settings()->kyc_status( $person['email'] )['consent_withdrawn'] );

		$back = $this->withdraw( array( 'confirm' => '1' ) );
		$this->assertStringContainsString( '/kyc-my-status/', $back );
		$this->assertTrue( Bridge_Client::from_settings()->kyc_status( $person['email'] )['consent_withdrawn'] );
		$html = do_shortcode( '[kyc_status]' );
		$this->assertStringContainsString( 'Your consent is withdrawn.', $html );
		$this->assertStringContainsString( 'You have withdrawn your consent', $html );
		$this->assertStringNotContainsString( 'kycb_withdraw_consent', $html );
		// The bridge queued the CRM sync that takes the KYC tags away.
		$jobs = Bridge_Client::from_settings()->contact( $person['email'] )['jobs'];
		$this->assertContains( 'crm.sync', array_column( $jobs, 'kind' ) );
	}

	public function test_withdrawal_works_with_the_read_only_token() {
		\KycBridge\Settings::set_token( self::fixtures()['bridge_read_token'] );
		$this->log_in( self::fixtures()['people']['self_readonly']['email'] );
		$this->withdraw( array( 'confirm' => '1' ) );
		Kyc_Lookup::forget( self::fixtures()['people']['self_readonly']['email'] );
		$this->assertStringContainsString( 'Your consent is withdrawn.', do_shortcode( '[kyc_status]' ) );
	}

	public function test_logged_out_withdrawal_is_refused() {
		wp_set_current_user( 0 );
		$this->expectException( WP_Die_Exception::class );
		Self_Service::handle();
	}
}
